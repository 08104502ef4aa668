/**
 * @summary Runs jest with the test hub's certificate authority trusted. Node reads NODE_EXTRA_CA_CERTS only when a
 * process starts, so the CA has to exist, and the variable to be set, before jest itself starts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { ensureCertificates } from "./localhub";
import { TEST_TLS_DIR } from "./helpers/paths";

/** The counts we print from the summary jest writes with --json --outputFile. */
interface JestSummary {
  numPassedTests: number;
  numFailedTests: number;
  numRuntimeErrorTestSuites: number;
  numPendingTests: number;
  numTodoTests: number;
}

async function main(): Promise<void> {
  const { caPath } = await ensureCertificates(TEST_TLS_DIR);
  const resultsFile = path.join(os.tmpdir(), `jest-results-${process.pid}.json`);
  const result = spawnSync(
    process.execPath,
    [require.resolve("jest/bin/jest"), "--json", `--outputFile=${resultsFile}`, ...process.argv.slice(2)],
    {
      stdio: "inherit",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath },
    },
  );
  // A plain closing line that any CI log reader understands.
  if (fs.existsSync(resultsFile)) {
    const results = JSON.parse(fs.readFileSync(resultsFile, "utf8")) as JestSummary;
    fs.rmSync(resultsFile);
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const skipped = results.numPendingTests + results.numTodoTests;
    console.log(`${results.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  }
  process.exit(result.status ?? 1);
}

main().catch((err) => {
  console.error(`Error: ${(err as Error).message}`);
  process.exit(1);
});
