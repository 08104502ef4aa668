/**
 * @summary Sets the desired property `telemetryInterval` on the module twin, guarded by the twin's etag.
 *
 * Tutorial step "Update the module twin". Usage: npx tsx UpdateModuleTwinDesiredProperties.ts [telemetryInterval]
 * (default 122, the tutorial's value)
 */
import { Registry } from "azure-iothub";
import { ConfigError, exitWithError, readServiceConfig } from "./config";

export const DEFAULT_TELEMETRY_INTERVAL = 122;
export const MAX_ATTEMPTS = 3;

export async function main(args: string[] = process.argv.slice(2)): Promise<void> {
  const telemetryInterval = parseTelemetryInterval(args);
  const { connectionString, deviceId, moduleId } = readServiceConfig();
  const registry = Registry.fromConnectionString(connectionString);

  await retryIfChangedMeanwhile(async () => {
    const twin = (await registry.getModuleTwin(deviceId, moduleId)).responseBody;
    console.log("");
    console.log("Module twin properties before update:");
    console.log(JSON.stringify(withoutMetadata(twin.properties), null, 2));

    // Update the twin. Passing the etag we read makes the hub refuse the patch (412) if the twin changed meanwhile.
    const patch = { properties: { desired: { telemetryInterval } } };
    const updated = (await registry.updateModuleTwin(deviceId, moduleId, patch, twin.etag)).responseBody;
    console.log("");
    console.log("Module twin properties after update:");
    console.log(JSON.stringify(withoutMetadata(updated.properties), null, 2));
  });
}

/** The value to set: the tutorial's 122 unless the reader gives another whole number of seconds. */
export function parseTelemetryInterval(args: string[]): number {
  if (args.length === 0) return DEFAULT_TELEMETRY_INTERVAL;
  const value = Number(args[0]);
  if (args.length > 1 || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(
      `"${args.join(" ")}" is not a telemetry interval: give one whole number of seconds, e.g. 122.`,
    );
  }
  return value;
}

/** 412 means someone changed the twin between our read and our patch: read it again, a bounded number of times. */
async function retryIfChangedMeanwhile(readAndUpdate: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readAndUpdate();
    } catch (err) {
      if (!shouldRetry(err, attempt)) throw err;
      const next = `attempt ${attempt + 1} of ${MAX_ATTEMPTS}`;
      console.log(`The module twin changed since it was read (412 Precondition Failed); reading it again (${next}).`);
    }
  }
}

export function shouldRetry(err: unknown, attempt: number): boolean {
  const e = err as { name?: string; response?: { statusCode?: number } } | undefined;
  return (e?.response?.statusCode === 412 || e?.name === "InvalidEtagError") && attempt < MAX_ATTEMPTS;
}

/** The twin's properties without the `$metadata` timestamps, which would drown the values in the output. */
export function withoutMetadata(properties: object): object {
  return JSON.parse(
    JSON.stringify(properties, (key, value: unknown) => (key === "$metadata" ? undefined : value)),
  ) as object;
}

// Run when started as a script, not when a test imports the functions above.
if (require.main === module) {
  main().catch((err) => exitWithError(err, "IOTHUB_CONNECTION_STRING"));
}
