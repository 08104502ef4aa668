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
/** The device SDK types reported properties as `any`; this is the one method of them used here. */
type Reported = { update(patch: object, done: (err?: Error) => void): void };
const VARIABLE = "MODULE_CONNECTION_STRING";
const CLOSE_TIMEOUT_MS = 3000;
const CAUGHT_UP = "Desired properties caught up (the whole state, read in full because patches may have been missed):";

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
    // The SDK delivers here the whole state too, after each full read of the twin: print that as what it is.
    const wholeState = desired === twin.properties.desired;
    if (!wholeState && desired.$version > seenVersion + 1) return void readWholeTwin(twin, "A patch went missing");
    seenVersion = desired.$version;
    console.log("");
    console.log(wholeState ? CAUGHT_UP : "Twin desired properties patch received:");
    console.log(JSON.stringify(desired, null, 2));
    reportBack(twin, desired, wholeState);
  });
  // Subscribed now: read the whole twin once more, so that a change made before the subscription is not missed.
  await readWholeTwin(twin);
  client.on("connect", () => void readWholeTwin(twin, "Connected to the hub again"));

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
  (twin.properties.reported as Reported).update(applied, (err?: Error) => {
    if (err) console.error(`Could not report the applied values: ${describeError(err, VARIABLE)}`);
  });
}

/** The reads of the whole twin, one after the other (see readWholeTwin). */
let reading = Promise.resolve();

/**
 * Microsoft's reconnection flow for twins: read the whole twin after every reconnection (the hub keeps no patches for
 * a module that is away), and whenever a `$version` was skipped. The handler in main() prints it if it is new.
 */
function readWholeTwin(twin: Twin, why?: string): Promise<void> {
  if (why) console.log(`${why}; reading the whole twin to catch up...`);
  // One read at a time: the SDK starts each read by clearing the twin it holds, and would mix overlapping answers.
  reading = reading
    .then(() => twin.get())
    .then(
      () => undefined,
      (err: Error) => console.error(`Could not read the twin: ${describeError(err, VARIABLE)}`),
    );
  return reading;
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
