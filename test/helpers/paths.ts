import * as path from "node:path";
import { pathToFileURL } from "node:url";

export const ROOT = path.resolve(__dirname, "../..");
/** Certificates shared by every hub the tests start; trusted by the jest process through NODE_EXTRA_CA_CERTS. */
export const TEST_TLS_DIR = path.join(ROOT, ".localhub-test");

/**
 * Runs a TypeScript file in one node process (`node --import tsx file.ts`). The `tsx` command would start a second
 * process for the script, and killing the first (kill -9 in a test) would leave the second running.
 */
export const NODE_WITH_TSX = [process.execPath, "--import", pathToFileURL(require.resolve("tsx")).href] as const;
