/**
 * @summary Creates a device identity and a module identity in IoT Hub and prints the module connection string.
 *
 * Tutorial step "Create a device identity and a module identity". Usage: npx tsx CreateModule.ts [--write-env]
 * (--write-env also stores the module connection string as MODULE_CONNECTION_STRING in .env)
 */
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { Registry } from "azure-iothub";
import { ConfigError, buildModuleConnectionString, exitWithError, readServiceConfig } from "./config";

export async function main(args: string[] = process.argv.slice(2)): Promise<void> {
  const writeEnv = wantsWriteEnv(args);
  const { connectionString, hostName, deviceId, moduleId } = readServiceConfig();
  const registry = Registry.fromConnectionString(connectionString);

  // CreateDevice, letting IoT Hub assign the keys; if the device exists already (409), read it instead.
  const device = (await unlessItExists(registry.create({ deviceId }))) ?? (await registry.get(deviceId)).responseBody;
  console.log(`device <${deviceId}> has primary key = ${device.authentication?.symmetricKey?.primaryKey}`);

  // CreateModule the same way. The SDK types addModule's answer as `any`, so read the module back for its keys.
  await unlessItExists(registry.addModule({ deviceId, moduleId }));
  const moduleIdentity = (await registry.getModule(deviceId, moduleId)).responseBody;
  const moduleKey = moduleIdentity.authentication?.symmetricKey?.primaryKey ?? "";
  console.log(`device/module <${deviceId}/${moduleId}> has primary key = ${moduleKey}`);

  // What the receiver needs: the module's own connection string.
  const moduleConnectionString = buildModuleConnectionString(hostName, deviceId, moduleId, moduleKey);
  console.log("");
  console.log("Module connection string (set it as MODULE_CONNECTION_STRING for the receiver):");
  console.log(`MODULE_CONNECTION_STRING="${moduleConnectionString}"`);
  if (writeEnv) {
    saveToEnvFile(".env", "MODULE_CONNECTION_STRING", moduleConnectionString);
    console.log("Saved MODULE_CONNECTION_STRING in .env");
  }
}

/** The one option, --write-env, saves the reader a copy and paste into .env. */
function wantsWriteEnv(args: string[]): boolean {
  try {
    return parseArgs({ args, options: { "write-env": { type: "boolean" } } }).values["write-env"] === true;
  } catch {
    throw new ConfigError(`Unknown argument ${args.join(" ")}: the only option is --write-env.`);
  }
}

/** The tutorial's 409 path: running the script again must not fail, so "exists already" gives `undefined`. */
export async function unlessItExists<T>(creating: Promise<{ responseBody: T }>): Promise<T | undefined> {
  try {
    return (await creating).responseBody;
  } catch (err) {
    if (isAlreadyExists(err)) return undefined;
    throw err;
  }
}

/** azure-iothub reports every 409 as DeviceAlreadyExistsError, for modules too; its error classes are not exported. */
export function isAlreadyExists(err: unknown): boolean {
  const e = err as { name?: string; response?: { statusCode?: number } } | undefined;
  return e?.response?.statusCode === 409 || e?.name === "DeviceAlreadyExistsError";
}

/**
 * For --write-env: sets `NAME="value"` in an env file, replacing the line that sets NAME or appending one, and leaves
 * every other line (and the file's line endings, LF or Windows CRLF) as it was. It writes a temporary file and renames
 * it over the old one, so an interrupted run never leaves half a .env.
 */
export function saveToEnvFile(file: string, name: string, value: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text ? text.replace(/\r?\n$/, "").split(/\r?\n/) : [];
  const at = lines.findIndex((line) => new RegExp(`^\\s*(export\\s+)?${name}\\s*=`).test(line));
  lines.splice(at >= 0 ? at : lines.length, at >= 0 ? 1 : 0, `${name}="${value}"`);
  // 0o600 keeps the key private on Linux and macOS; Windows ignores all but the write bit, which this keeps.
  const temporary = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, lines.join(eol) + eol, { mode: 0o600 });
  fs.renameSync(temporary, file);
}

// Run when started as a script (npx tsx CreateModule.ts), not when a test imports the functions above.
if (require.main === module) {
  main().catch((err) => exitWithError(err, "IOTHUB_CONNECTION_STRING"));
}
