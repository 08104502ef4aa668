import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");
/** Certificates shared by every hub the tests start; trusted by the jest process through NODE_EXTRA_CA_CERTS. */
export const TEST_TLS_DIR = path.join(ROOT, ".localhub-test");

/**
 * Runs a TypeScript file in one node process (`node --require tsx/cjs file.ts`). The `tsx` command would start a
 * second process for the script, and killing the first (kill -9 in a test) would leave the second running. tsx's
 * CommonJS hook compiles our CommonJS files as `npx tsx` does, without the ESM loader's thread: a script starts on
 * about 0.45 CPU-s instead of 0.6. test/scripts/copy.test.ts runs the scripts through `npx tsx` itself.
 */
export const NODE_WITH_TSX = [process.execPath, "--require", require.resolve("tsx/cjs")] as const;
