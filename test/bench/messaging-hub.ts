/**
 * @summary The bench's hub with its messaging (AMQP edge, C2D queue, event log) as its own process, until the CLI
 * starts messaging itself: `node --import tsx messaging-hub.ts DIR` (DIR holds the bench's certificates) binds free
 * ports and prints one JSON line with them and the IoT Hub and Event Hubs-compatible connection strings.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { startHub } from "../localhub/hub";
import { startMessaging } from "../localhub/edges/amqp/messaging";

async function main(dataDir: string): Promise<void> {
  const hub = await startHub({ dataDir, httpsPort: 0, mqttPort: 0 });
  const tls = {
    key: fs.readFileSync(path.join(dataDir, "server-key.pem"), "utf8"),
    cert: fs.readFileSync(path.join(dataDir, "server.pem"), "utf8"),
  };
  const messaging = await startMessaging({ core: hub.core, dataDir, tls, amqpPort: 0 });
  console.log(
    JSON.stringify({
      ports: { https: hub.ports.https, mqtt: hub.ports.mqtt, amqp: messaging.amqp.port },
      iotHub: hub.connectionString,
      eventHub: messaging.eventHubConnectionString(),
    }),
  );
  process.once("SIGTERM", () => {
    void messaging
      .stop()
      .then(() => hub.stop())
      .then(() => process.exit(0));
  });
}

main(process.argv[2]).catch((err: Error) => {
  console.error(`Error: ${err.message}`);
  process.exit(1);
});
