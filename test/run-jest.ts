/**
 * @summary Runs jest with the test hub's certificate authority trusted. Node reads NODE_EXTRA_CA_CERTS only when a
 * process starts, so the CA has to exist, and the variable to be set, before jest itself starts.
 */
import { spawnSync } from "node:child_process";
import { ensureCertificates } from "./hub/certs";
import { TEST_TLS_DIR } from "./support/paths";

async function main(): Promise<void> {
  const { caPath } = await ensureCertificates(TEST_TLS_DIR);
  const result = spawnSync(process.execPath, [require.resolve("jest/bin/jest"), ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath },
  });
  process.exit(result.status ?? 1);
}

main().catch((err) => {
  console.error(`Error: ${(err as Error).message}`);
  process.exit(1);
});
