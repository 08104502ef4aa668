/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // jest-light-runner runs each test file in plain Node, in one of maxWorkers child processes, with TypeScript loaded
  // by tsx's CommonJS hook (test/helpers/jest-runner.ts starts the workers so): the SDKs and the hub are loaded once
  // per worker instead of once per test file. Child processes, not threads: port-redirect.cjs patches
  // `net` for its whole process, and a test's process groups are killed when its worker exits. Jest's timeouts and
  // `it.concurrent`, which the light runner leaves out, come from test/helpers/light-runner-setup.ts; its workers are
  // started by test/helpers/jest-runner.ts, which fixes how they get their settings.
  runner: "<rootDir>/test/helpers/jest-runner.ts",
  setupFilesAfterEnv: ["<rootDir>/test/helpers/light-runner-setup.ts"],
  // No transform: tsx compiles the TypeScript. Jest's default (babel-jest) would still be loaded, with Babel, by every
  // worker that builds a snapshot resolver, about 0.5 CPU-s each, for nothing.
  transform: {},
  // Jest's own report, and the counts for test/run-jest.ts's closing line, which no failure's details can break.
  reporters: ["default", "<rootDir>/test/helpers/summary-reporter.cjs"],
  // Every test file starts its own hubs on ephemeral ports (test/helpers/hub.ts), so files run in parallel; only
  // test/scripts/machine-ports.test.ts binds 443 and 8883, and it is one file. Much of a test's time is spent waiting
  // on sockets, timers and child processes, so even a 2-core machine runs five files at once with profit (the 40
  // files of 4c8eb1f ran 4.5% faster with five workers than with four, in turn on this 2-core machine).
  maxWorkers: 5,
};
