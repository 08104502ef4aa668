/**
 * @summary Connects as the module over MQTT and prints every desired-properties patch of its module twin
 * (tutorial step "Get updates on the device side"). Reports each applied value back as a reported property.
 *
 * Usage: npx tsx ReceiveModuleTwinDesiredPropertiesPatch.ts   (Ctrl-C to stop)
 */
import { ModuleClient, Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { describeError, exitWithError, readModuleConfig } from "./config";

type Properties = { [key: string]: unknown };
const VARIABLE = "MODULE_CONNECTION_STRING";
const CLOSE_TIMEOUT_MS = 3000;

const isObject = (value: unknown): value is Properties =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The desired values alone, without the hub's `$version` and `$metadata`. */
export function valuesOf(desired: Properties): Properties {
  const { $version, $metadata, ...values } = desired;
  return JSON.parse(JSON.stringify(values));
}

/** What changed from `before` to `after`, written as a patch: new and changed values, `null` for removed keys. */
export function diffDesired(before: Properties, after: Properties): Properties {
  const patch: Properties = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) {
    if (isObject(value) && isObject(before[key])) {
      const inner = diffDesired(before[key] as Properties, value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (JSON.stringify(value) !== JSON.stringify(before[key])) {
      patch[key] = value;
    }
  }
  return patch;
}

/** Merges a patch into a state as the hub does: objects merge, `null` deletes. */
export function applyPatch(state: Properties, patch: Properties): Properties {
  const result: Properties = { ...state };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isObject(value) && isObject(result[key])) result[key] = applyPatch(result[key] as Properties, value);
    else result[key] = value;
  }
  return result;
}

export async function main(): Promise<void> {
  const config = readModuleConfig();
  console.log("Starting the IoT Hub module client sample...");
  const client = ModuleClient.fromConnectionString(config.connectionString, Mqtt);
  let stopping = false;

  // Without listeners an 'error' event would crash the process; the SDK retries the connection by itself.
  client.on("error", (err: Error) => console.error(`Client error: ${describeError(err, VARIABLE)}`));
  client.on("disconnect", () => {
    if (stopping) return;
    console.log("Disconnected from the hub; trying to reconnect...");
    client.open().catch((err: Error) => console.error(`Reconnect failed: ${describeError(err, VARIABLE)}`));
  });

  await client.open();
  const twin: Twin = await client.getTwin();

  // What this module has seen so far: every patch with a higher $version is new.
  let known: Properties = {};
  let knownVersion = 0;

  const handlePatch = (patch: Properties, version: number, note = ""): void => {
    console.log("");
    console.log(`Twin desired properties patch received${note}:`);
    console.log(JSON.stringify({ ...patch, $version: version }, null, 2));
    known = applyPatch(known, patch);
    knownVersion = version;
    // Acknowledge: mirror the applied values into reported properties, so the service side sees the round trip.
    twin.properties.reported.update(patch, (err?: Error) => {
      if (err) console.error(`Could not report the applied values: ${describeError(err, VARIABLE)}`);
    });
  };

  // While the whole twin is being read, the SDK fires it as one event too: events then wait until the read is done.
  let reading = false;
  let heldBack: Properties[] = [];

  const onDesired = (delta: Properties): void => {
    const version = Number(delta.$version ?? 0);
    if (reading) {
      heldBack.push(delta);
    } else if (version === knownVersion + 1) {
      handlePatch(valuesOf(delta), version);
    } else if (version > knownVersion + 1) {
      catchUpLater(); // a patch went missing: read the whole twin
    }
    // Anything older was seen already (or is the whole state, which was printed).
  };

  /** Reads the whole twin; the first time it prints it as the current state, later it prints what changed meanwhile. */
  const catchUp = async (first: boolean): Promise<void> => {
    reading = true;
    try {
      await twin.get();
    } finally {
      reading = false;
    }
    const values = valuesOf(twin.properties.desired);
    const version = Number(twin.properties.desired.$version ?? 0);
    if (first) {
      [known, knownVersion] = [values, version];
      console.log("");
      console.log(`Current desired properties ($version ${knownVersion}; this is the state now, not a patch):`);
      console.log(JSON.stringify(known, null, 2));
    } else if (version > knownVersion) {
      handlePatch(diffDesired(known, values), version, " (sent while disconnected)");
    }
    const held = heldBack;
    heldBack = [];
    held.forEach(onDesired);
  };
  let catchingUp = Promise.resolve();
  const catchUpLater = (): void => {
    catchingUp = catchingUp
      .then(() => catchUp(false))
      .catch((err: Error) => console.error(`Could not read the twin: ${describeError(err, VARIABLE)}`));
  };

  // Adding the listener subscribes to patches. Reading the twin after that leaves no gap: a change made before the
  // subscription took effect is in this read, and every later one arrives as a patch.
  twin.on("properties.desired", onDesired);
  await catchUp(true);

  // After a reconnect the SDK subscribes again but does not read the twin: patches sent meanwhile would be lost.
  client.on("connect", () => {
    console.log("Connected to the hub again; checking for patches sent meanwhile...");
    catchUpLater();
  });

  console.log("");
  console.log("Waiting for desired property patches, press Ctrl-C to exit");

  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log("IoTHubModuleClient sample stopped");
    console.log("Shutting down IoT Hub Client");
    // The SDK's close can hang when the hub is gone: do not wait for it forever.
    const timer = setTimeout(() => process.exit(0), CLOSE_TIMEOUT_MS);
    client.close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
    timer.unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

if (require.main === module) {
  main().catch((err) => exitWithError(err, VARIABLE));
}
