/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // esbuild only strips the types (as tsx does for the scripts), several times faster than ts-jest on a cold cache,
  // as CI has it; `npm test` runs `tsc --noEmit` beside jest for the types.
  transform: { "^.+\\.ts$": "<rootDir>/test/helpers/esbuild-jest.cjs" },
  // Jest's own report, and the counts for test/run-jest.ts's closing line, which no failure's details can break.
  reporters: ["default", "<rootDir>/test/helpers/summary-reporter.cjs"],
  // Every test file starts its own hubs on ephemeral ports (test/helpers/hub.ts), so files run in parallel; only
  // test/scripts/machine-ports.test.ts binds 443 and 8883, and it is one file. Much of a test's time is spent waiting
  // on sockets, timers and child processes, so even a 2-core machine runs four files at once with profit: on this
  // project's 2-core machine the whole suite took 75.7 s with three workers and 67.4 s with four (one sitting).
  maxWorkers: 4,
  // A worker's loop is empty the moment jest tells it to end, but Node then frees a heap of a few hundred MB, which
  // takes longer than jest's default 500 ms on a loaded 2-core machine: jest killed it and warned "A worker process
  // has failed to exit gracefully". A leaked handle would still be found: it keeps a worker alive past this too.
  workerGracefulExitTimeout: 5000,
  testTimeout: 30000,
};
