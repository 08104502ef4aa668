/**
 * A hub with its messaging as its own process, for the kill -9 test: `node --require tsx/cjs messaging-hub-process.ts
 * DIR` starts it on free ports and prints one JSON line with the ports and connection strings.
 */
import { startMessagingHub } from "./messaging-hub";

startMessagingHub(process.argv[2]).then(
  ({ hub }) =>
    console.log(
      JSON.stringify({
        ports: hub.ports,
        iotHub: hub.connectionString,
        eventHub: hub.eventHubConnectionString(),
      }),
    ),
  (err: Error) => {
    console.error(`Error: ${err.message}`);
    process.exit(1);
  },
);
