/**
 * @summary Connects as the module over MQTT and prints every desired-properties patch of its module twin.
 *
 * Tutorial step "Get updates on the device side". Usage: npx tsx ReceiveModuleTwinDesiredPropertiesPatch.ts
 * (Ctrl-C to stop). It also reports each change back, and reads the whole twin again after every reconnection.
 */
import { ModuleClient, Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { describeError, exitWithError, readModuleConfig } from "./config";

/** Desired properties as the device SDK delivers them: the values, and the hub's `$version` of the twin. */
type Desired = { $version: number; [key: string]: unknown };
const VARIABLE = "MODULE_CONNECTION_STRING";
const CLOSE_TIMEOUT_MS = 3000;
const AFTER_RECONNECTING = "Desired properties after (re)connecting (the whole state, not a patch):";

export async function main(): Promise<void> {
  const { connectionString } = readModuleConfig();
  console.log("Starting the IoT Hub module client sample...");
  const client = ModuleClient.fromConnectionString(connectionString, Mqtt);
  reconnectWhenDropped(client);

  await client.open();
  const twin: Twin = await client.getTwin();
  let seenVersion = printCurrentState(twin.properties.desired as Desired);

  // The tutorial's patch handler. Microsoft's reconnection flow: skip every `$version` seen already.
  twin.on("properties.desired", (desired: Desired) => {
    if (!(desired.$version > seenVersion)) return;
    seenVersion = desired.$version;
    // The SDK delivers the whole state here too, after each full read of the twin: print that as what it is.
    const wholeState = desired === twin.properties.desired;
    console.log("");
    console.log(wholeState ? AFTER_RECONNECTING : "Twin desired properties patch received:");
    console.log(JSON.stringify(desired, null, 2));
    reportBack(twin, desired, wholeState);
  });
  // Subscribed now: read the whole twin once more, so that a change made before the subscription is not missed.
  await twin.get();
  readTwinOnEveryReconnection(client, twin);

  console.log("");
  console.log("Waiting for desired property patches, press Ctrl-C to exit");
  stopOnCtrlC(client);
}

/** Prints the state the module starts from, which is not a patch, and returns its `$version`. */
function printCurrentState(desired: Desired): number {
  console.log("");
  console.log("Current desired properties (the whole state, not a patch):");
  console.log(JSON.stringify(desired, null, 2));
  return desired.$version;
}

/**
 * Mirrors the applied values into reported properties, so that the service side sees the round trip. After a full
 * read, keys that were removed from desired meanwhile are removed from reported too (`null` deletes).
 */
function reportBack(twin: Twin, desired: Desired, wholeState: boolean): void {
  const { $version, ...applied } = desired;
  if (wholeState) {
    for (const key of Object.keys(twin.properties.reported)) {
      if (!key.startsWith("$") && key !== "update" && !(key in applied)) applied[key] = null;
    }
  }
  twin.properties.reported.update(applied, (err?: Error) => {
    if (err) console.error(`Could not report the applied values: ${describeError(err, VARIABLE)}`);
  });
}

/**
 * Microsoft's reconnection flow for twins: after every reconnection read the whole twin, because the hub does not
 * keep the patches sent while the module was away. The handler in main() prints it only if its `$version` is new.
 */
function readTwinOnEveryReconnection(client: ModuleClient, twin: Twin): void {
  client.on("connect", () => {
    console.log("Connected to the hub again; reading the whole twin for changes sent meanwhile...");
    twin.get().catch((err: Error) => console.error(`Could not read the twin: ${describeError(err, VARIABLE)}`));
  });
}

/** Set on Ctrl-C, so that closing the client is not taken for a dropped connection. */
let stopping = false;

/** The SDK retries a dropped connection by itself and emits 'disconnect' only when it gives up: then start again. */
function reconnectWhenDropped(client: ModuleClient): void {
  // Without an 'error' listener, an error the SDK emits would end the process.
  client.on("error", (err: Error) => console.error(`Client error: ${describeError(err, VARIABLE)}`));
  client.on("disconnect", () => {
    if (stopping) return;
    console.log("Disconnected from the hub; trying to reconnect...");
    client.open().catch((err: Error) => console.error(`Reconnect failed: ${describeError(err, VARIABLE)}`));
  });
}

/**
 * Ctrl-C arrives as SIGINT on Linux, macOS and Windows alike; SIGTERM (service managers, `kill`) exists only on POSIX,
 * and listening for it elsewhere is harmless. Close the client, but never wait forever: close can hang without a hub.
 */
function stopOnCtrlC(client: ModuleClient): void {
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log("IoTHubModuleClient sample stopped");
    console.log("Shutting down IoT Hub Client");
    setTimeout(() => process.exit(0), CLOSE_TIMEOUT_MS).unref();
    const exit = (): never => process.exit(0);
    client.close().then(exit, exit);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

// Run when started as a script, not when a test imports this file.
if (require.main === module) {
  main().catch((err) => exitWithError(err, VARIABLE));
}
