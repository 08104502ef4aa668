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
  const stopping = stopOnCtrlC(client);
  reconnectWhenDropped(client, stopping);
  await client.open();
  const twin: Twin = await client.getTwin();
  const { onDesired, catchUp } = followDesired(twin);
  twin.on("properties.desired", onDesired);
  await catchUp(); // subscribed now: a change made while subscribing is not missed
  client.on("connect", () => void catchUp("Connected to the hub again"));
  console.log("");
  console.log("Waiting for desired property patches, press Ctrl-C to exit");
}

/**
 * Prints the state the module starts from, and returns the tutorial's patch handler and the catch-up it falls back
 * on: Microsoft's reconnection flow for twins. The hub keeps no patches for a module that is away, so after every
 * reconnection, and whenever a patch skips a `$version`, read the whole twin; skip every `$version` seen already.
 */
function followDesired(twin: Twin) {
  let seenVersion = printState("Current desired properties (the whole state, not a patch):", twin);
  let reads = Promise.resolve();
  let pendingReads = 0;
  /** What arrives while the whole twin is being read: handled once the reads have answered. */
  const heldBack: Desired[] = [];

  function onDesired(desired: Desired): void {
    if (pendingReads > 0) return void heldBack.push(desired);
    if (!(desired.$version > seenVersion)) return;
    if (desired.$version > seenVersion + 1) return void catchUp("A patch went missing");
    seenVersion = desired.$version;
    console.log("");
    console.log("Twin desired properties patch received:");
    console.log(JSON.stringify(desired, null, 2));
    reportBack(twin, desired);
  }

  /** Reads the whole twin, one read at a time: the SDK clears its copy at each read and would mix two answers. */
  function catchUp(why?: string): Promise<void> {
    if (why) console.log(`${why}; reading the whole twin to catch up...`);
    pendingReads++;
    reads = reads.then(readWholeTwin).finally(() => {
      if (--pendingReads === 0) for (const desired of heldBack.splice(0)) onDesired(desired);
    });
    return reads;
  }

  /** Prints the whole state if it is newer than what was seen, and reports it back. */
  async function readWholeTwin(): Promise<void> {
    try {
      await twin.get();
    } catch (err) {
      return console.error(`Could not read the twin: ${describeError(err, VARIABLE)}`);
    }
    if (!((twin.properties.desired as Desired).$version > seenVersion)) return;
    seenVersion = printState(CAUGHT_UP, twin);
    reportBack(twin, twin.properties.desired as Desired, removedFromDesired(twin));
  }

  return { onDesired, catchUp };
}

/** Prints `heading` and the twin's whole desired state, which is not a patch; returns its `$version`. */
function printState(heading: string, twin: Twin): number {
  const desired = twin.properties.desired as Desired;
  console.log("");
  console.log(heading);
  console.log(JSON.stringify(desired, null, 2));
  return desired.$version;
}

/** The reported keys whose desired counterpart is gone: after a full read they are deleted from reported too. */
function removedFromDesired(twin: Twin): Record<string, null> {
  // As JSON: the reported properties are data and a method of the SDK's; only the data counts here.
  const reported = JSON.parse(JSON.stringify(twin.properties.reported)) as Record<string, unknown>;
  const removed: Record<string, null> = {};
  for (const key of Object.keys(reported)) {
    if (!key.startsWith("$") && !(key in twin.properties.desired)) removed[key] = null;
  }
  return removed;
}

/** Mirrors the applied values into reported properties, so that the service side sees the round trip. */
function reportBack(twin: Twin, desired: Desired, removed: Record<string, null> = {}): void {
  const { $version, ...applied } = desired;
  (twin.properties.reported as Reported).update({ ...removed, ...applied }, (err?: Error) => {
    if (err) console.error(`Could not report the applied values: ${describeError(err, VARIABLE)}`);
  });
}

/** The SDK retries a dropped connection by itself and emits 'disconnect' only when it gives up: then start again. */
function reconnectWhenDropped(client: ModuleClient, stopping: () => boolean): void {
  // Without an 'error' listener, an error the SDK emits would end the process.
  client.on("error", (err: Error) => console.error(`Client error: ${describeError(err, VARIABLE)}`));
  client.on("disconnect", () => {
    if (stopping()) return;
    console.log("Disconnected from the hub; trying to reconnect...");
    client.open().catch((err: Error) => console.error(`Reconnect failed: ${describeError(err, VARIABLE)}`));
  });
}

/**
 * Ctrl-C arrives as SIGINT on Linux, macOS and Windows alike; SIGTERM (service managers, `kill`) exists only on POSIX,
 * and listening for it elsewhere is harmless. Close the client, but never wait forever: close can hang without a hub.
 * Returns whether it is stopping, so that closing the client is not taken for a dropped connection.
 */
function stopOnCtrlC(client: ModuleClient): () => boolean {
  let stopping = false;
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
  return () => stopping;
}

// Run when started as a script, not when a test imports this file.
if (require.main === module) {
  main().catch((err) => exitWithError(err, VARIABLE));
}
