/**
 * The one ESM hook of jest's workers (test/helpers/jest-runner.ts starts them with it and with tsx's CommonJS hook).
 * jest-light-runner `import()`s each test file; a .ts file is handed from here to Node's CommonJS loader, where tsx's
 * CommonJS hook compiles it, and everything it requires loads as CommonJS always does, without tsx's ESM loader.
 * A null source is Node's documented way to leave a file: URL's CommonJS module to the CommonJS loader.
 *
 * @param {string} url
 * @param {object} context
 * @param {(url: string, context: object) => Promise<object>} nextLoad
 * @returns {object | Promise<object>}
 */
export function load(url, context, nextLoad) {
  if (url.startsWith("file:") && /\.ts(\?|$)/.test(url))
    return { format: "commonjs", source: null, shortCircuit: true };
  return nextLoad(url, context);
}
