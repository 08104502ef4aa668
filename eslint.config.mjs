// @ts-check
/**
 * ESLint finds the bugs that formatting and the compiler miss (a floating promise, a missing await, `any` leaking
 * out, unused code): typescript-eslint's recommended type-checked rules over tsconfig.json. `npm run lint` runs it.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import eslint from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["node_modules/", ".localhub*/", "test/bench/.tmp/", "coverage/", "dist/"] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        // The JavaScript files (configs, the port-redirect preload, the workers' ESM hook, the reporter) are outside tsconfig.json: a default project.
        projectService: {
          allowDefaultProject: ["*.js", "*.mjs", "test/localhub/*.cjs", "test/helpers/*.cjs", "test/helpers/*.mjs"],
        },
        tsconfigRootDir: dirname(fileURLToPath(import.meta.url)), // import.meta.dirname needs Node 20.11
      },
    },
    rules: {
      // `const { $metadata, ...values } = twin` is how a key is left out of a copy.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
      // A `let` that callbacks read before its one assignment (the hub's edges, set once the store is open) must stay
      // `let`: as a `const` it would throw when read too early.
      "prefer-const": ["error", { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The hub's front door: the demo, the bench, the helpers and every test that drives the hub over its protocols
    // import test/localhub/index.ts only, so the hub's rooms can move without them; unit tests may reach inside.
    files: ["test/**/*.ts"],
    ignores: ["test/localhub/**", "test/unit/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "localhub/.", message: "Import the local hub from its front door, test/localhub." }] },
      ],
    },
  },
  {
    // Edges reach state through the core only, never the stores; the MQTT and WebSocket edges share nothing with AMQP's.
    files: ["test/localhub/edges/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ regex: "/store/", message: "Edges use the core (test/localhub/core), not the stores." }] },
      ],
    },
  },
  {
    files: ["test/localhub/edges/mqtt/**/*.ts", "test/localhub/edges/websocket.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "/store/", message: "Edges use the core (test/localhub/core), not the stores." },
            { regex: "amqp/", message: "The MQTT and WebSocket edges do not depend on the AMQP edge." },
          ],
        },
      ],
    },
  },
  {
    // CommonJS JavaScript (jest.config.js, port-redirect.cjs): require is its import, and Node its only host.
    files: ["**/*.js", "**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { process: "readonly", console: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // The portal's page script runs in the browser, as plain JavaScript with no build step: no types to check.
    files: ["test/localhub/edges/portal/static/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: "script",
      globals: {
        document: "readonly",
        fetch: "readonly",
        EventSource: "readonly",
        navigator: "readonly",
        getSelection: "readonly",
        confirm: "readonly",
        CSS: "readonly",
        URLSearchParams: "readonly",
      },
    },
    rules: { "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }] },
  },
  {
    // Test bodies read wire JSON and SDK results that the SDKs type as `any`, and check each read at once with a jest
    // expectation, which fails on a wrong shape; nothing leaks out of a test. The scripts, the hub and the test
    // helpers keep these rules.
    files: ["test/**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
);
