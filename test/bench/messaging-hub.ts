/**
 * @summary The bench's hub for the messaging part as its own process: `node --import tsx messaging-hub.ts DIR` (DIR
 * holds the bench's certificates) binds free ports and prints one JSON line with them and the IoT Hub and Event
 * Hubs-compatible connection strings.
 */
import { startHub } from "../localhub";

async function main(dataDir: string): Promise<void> {
  const hub = await startHub({ dataDir, httpsPort: 0, mqttPort: 0, amqpPort: 0 });
  console.log(
    JSON.stringify({
      ports: hub.ports,
      iotHub: hub.connectionString,
      eventHub: hub.eventHubConnectionString(),
    }),
  );
  process.once("SIGTERM", () => void hub.stop().then(() => process.exit(0)));
}

main(process.argv[2]).catch((err: Error) => {
  console.error(`Error: ${err.message}`);
  process.exit(1);
});
