/**
 * @summary Sets the desired property `telemetryInterval` on the module twin, guarded by the twin's etag
 * (tutorial step "Update the module twin using the service SDK").
 *
 * Usage: npx tsx UpdateModuleTwinDesiredProperties.ts [telemetryInterval]   (default 122)
 */
import { Registry } from "azure-iothub";
import { ConfigError, exitWithError, readServiceConfig } from "./config";

export const DEFAULT_TELEMETRY_INTERVAL = 122;
export const MAX_ATTEMPTS = 3;

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

/** 412 means someone changed the twin after we read it: read it again and retry, a bounded number of times. */
export function shouldRetry(err: unknown, attempt: number): boolean {
  const e = err as { name?: string; response?: { statusCode?: number } };
  const etagConflict = e?.response?.statusCode === 412 || e?.name === "InvalidEtagError";
  return etagConflict && attempt < MAX_ATTEMPTS;
}

/** The twin's properties without the `$metadata` timestamps, which would drown the values in the output. */
export function withoutMetadata(properties: object): object {
  return JSON.parse(JSON.stringify(properties, (key, value) => (key === "$metadata" ? undefined : value)));
}

export async function main(args: string[] = process.argv.slice(2)): Promise<void> {
  const telemetryInterval = parseTelemetryInterval(args);
  const { connectionString, deviceId, moduleId } = readServiceConfig();
  const registry = Registry.fromConnectionString(connectionString);

  for (let attempt = 1; ; attempt++) {
    const twin = (await registry.getModuleTwin(deviceId, moduleId)).responseBody;
    console.log("");
    console.log("Module twin properties before update:");
    console.log(JSON.stringify(withoutMetadata(twin.properties), null, 2));

    // Passing the etag we read makes the hub refuse the patch (412) if the twin changed in between.
    const patch = { properties: { desired: { telemetryInterval } } };
    try {
      const updated = (await registry.updateModuleTwin(deviceId, moduleId, patch, twin.etag)).responseBody;
      console.log("");
      console.log("Module twin properties after update:");
      console.log(JSON.stringify(withoutMetadata(updated.properties), null, 2));
      return;
    } catch (err) {
      if (!shouldRetry(err, attempt)) throw err;
      console.log(
        `The module twin changed since it was read (etag ${twin.etag}); reading it again (attempt ${attempt + 1} of ${MAX_ATTEMPTS}).`,
      );
    }
  }
}

if (require.main === module) {
  main().catch((err) => exitWithError(err, "IOTHUB_CONNECTION_STRING"));
}
