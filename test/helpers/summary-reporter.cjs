/**
 * A jest reporter that writes only the counts run-jest's closing line needs to the file named by JEST_SUMMARY_FILE.
 * `--json` serialises every failure's details, and a failure holding a circular object (an SDK error with its
 * req/res) stops it from writing anything at all; counts always serialise.
 */
const fs = require("node:fs");

class SummaryReporter {
  /**
   * @param {unknown} _contexts
   * @param {import("@jest/test-result").AggregatedResult} results
   */
  onRunComplete(_contexts, results) {
    const file = process.env.JEST_SUMMARY_FILE;
    if (!file) return;
    const { numPassedTests, numFailedTests, numRuntimeErrorTestSuites, numPendingTests, numTodoTests } = results;
    const summary = { numPassedTests, numFailedTests, numRuntimeErrorTestSuites, numPendingTests, numTodoTests };
    fs.writeFileSync(file, JSON.stringify(summary));
  }
}

module.exports = SummaryReporter;
