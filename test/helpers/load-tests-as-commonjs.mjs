/**
 * The one ESM hook of jest's workers (test/helpers/jest-runner.ts starts them with it and with tsx's CommonJS hook).
 * jest-light-runner `import()`s each test file; a .ts file is handed from here to Node's CommonJS loader, where tsx's
 * CommonJS hook compiles it, and everything it requires loads as CommonJS always does. Under tsx's ESM loader instead,
 * Node 20 resolves and loads every require() below an imported CommonJS file by a round trip to the loader's thread:
 * the hub and the SDKs, once per test file. That round trip was the largest single cost of the suite.
 */
export async function load(url, context, nextLoad) {
  // A null source is Node's documented way to leave a file: URL's CommonJS module to the CommonJS loader.
  if (url.startsWith("file:") && /\.ts(\?|$)/.test(url)) return { format: "commonjs", source: null, shortCircuit: true };
  return nextLoad(url, context);
}
