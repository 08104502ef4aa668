import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");
/** Certificates shared by every hub the tests start; trusted by the jest process through NODE_EXTRA_CA_CERTS. */
export const TEST_TLS_DIR = path.join(ROOT, ".localhub-test");
