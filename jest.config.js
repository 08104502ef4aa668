/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  // Type checking is `npm run typecheck`; the transform only strips types, which keeps the suite fast.
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: { isolatedModules: true } }] },
  // Every test file starts its own hubs on ephemeral ports (test/helpers/hub.ts), so files run in parallel; only
  // test/scripts/machine-ports.test.ts binds 443 and 8883, and it is one file.
  testTimeout: 30000,
};
