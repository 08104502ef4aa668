/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // Type checking is `npm run typecheck`; the transform only strips types, which keeps the suite fast.
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: { isolatedModules: true } }] },
  // Hub tests bind the machine-wide ports 443 and 8883: one test file at a time.
  maxWorkers: 1,
  testTimeout: 30000,
};
