/**
 * @summary Runs jest with the test hub's certificate authority trusted. Node reads NODE_EXTRA_CA_CERTS only when a
 * process starts, so the CA has to exist, and the variable to be set, before jest itself starts. With `--typecheck`
 * (`npm test`), the type check runs beside jest instead of before it, and incrementally (its state in
 * node_modules/.cache): an unchanged tree is checked again in about half the time.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { ensureCertificates } from "./localhub";
import { ROOT, TEST_TLS_DIR } from "./helpers/paths";

/** The counts test/helpers/summary-reporter.cjs writes for the closing line. */
interface JestSummary {
  numPassedTests: number;
  numFailedTests: number;
  numRuntimeErrorTestSuites: number;
  numPendingTests: number;
  numTodoTests: number;
}

/** The niceness of a background program (19, the lowest priority). */
const LOWEST_PRIORITY = 19;
const TYPECHECK_STATE = path.join(ROOT, "node_modules", ".cache", "typecheck.tsbuildinfo");

/**
 * Runs a node program to its end. A `background` one keeps its output for later instead of showing it as it comes,
 * and runs at the lowest priority: it fills the time jest's workers spend waiting, instead of taking theirs.
 */
function run(args: string[], env: NodeJS.ProcessEnv, background: boolean): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    stdio: background ? ["ignore", "pipe", "pipe"] : "inherit",
  });
  if (background && child.pid !== undefined) os.setPriority(child.pid, LOWEST_PRIORITY);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

const NO_TYPECHECK = Promise.resolve({ code: 0, output: "" });
const TSC = [require.resolve("typescript/bin/tsc"), "--noEmit", "-p", ".", "--incremental"];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const typecheck = args.includes("--typecheck")
    ? run([...TSC, "--tsBuildInfoFile", TYPECHECK_STATE], process.env, true)
    : NO_TYPECHECK;
  const { caPath } = await ensureCertificates(TEST_TLS_DIR);
  const resultsFile = path.join(os.tmpdir(), `jest-summary-${process.pid}.json`);
  fs.rmSync(resultsFile, { force: true });
  const jest = await run(
    // tsx's CommonJS hook lets jest load test/helpers/jest-runner.ts, which starts the workers with their own hooks.
    [
      "--require",
      require.resolve("tsx/cjs"),
      require.resolve("jest/bin/jest"),
      ...args.filter((arg) => arg !== "--typecheck"),
    ],
    { ...process.env, NODE_EXTRA_CA_CERTS: caPath, JEST_SUMMARY_FILE: resultsFile },
    false,
  );
  const types = await typecheck;
  if (types.code !== 0) console.error(`\nThe type check (tsc --noEmit) failed:\n${types.output}`);
  if (typecheck !== NO_TYPECHECK) console.log(types.code === 0 ? "Types: checked" : "Types: the check FAILED");
  if (!fs.existsSync(resultsFile)) {
    console.error(`jest ended (exit code ${jest.code}) without reporting its results.`);
    process.exit(jest.code !== 0 ? jest.code : 1);
  }
  const results = JSON.parse(fs.readFileSync(resultsFile, "utf8")) as JestSummary;
  fs.rmSync(resultsFile);
  const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
  const skipped = results.numPendingTests + results.numTodoTests;
  // A plain closing line, alone on its line, that any CI log reader understands.
  console.log(`${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(jest.code !== 0 ? jest.code : types.code);
}

main().catch((err) => {
  console.error(`Error: ${(err as Error).message}`);
  process.exit(1);
});
