/**
 * @summary aedes as its own process for the peers bench: `node --import tsx aedes-broker.ts CERT_DIR` serves MQTT over
 * node:tls on a free loopback port with the bench's server certificate and prints one JSON line `{"port": n}`.
 *
 * Persistence: aedes' default, aedes-persistence (in memory). No persistence could make aedes durable before the
 * PUBACK: its QoS 1 handler writes the PUBACK first and hands the message to the broker after (lib/handlers/publish.js).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";

async function main(certDir: string): Promise<void> {
  // aedes is an ES module; a dynamic import keeps this CommonJS file loadable on every Node 20.
  const { Aedes } = await import("aedes");
  const broker = await Aedes.createBroker();
  const server = tls.createServer(
    {
      cert: fs.readFileSync(path.join(certDir, "server.pem")),
      key: fs.readFileSync(path.join(certDir, "server-key.pem")),
    },
    (socket) => broker.handle(socket),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  process.once("SIGTERM", () => process.exit(0));
}

main(process.argv[2]).catch((err: Error) => {
  console.error(`aedes: ${err.message}`);
  process.exit(1);
});
