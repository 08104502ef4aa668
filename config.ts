/**
 * @summary The one helper the three tutorial scripts share: reads `.env`, checks the connection strings before any
 * network call, and turns the errors a newcomer meets into one clear line and an exit code.
 */
import * as dotenv from "dotenv";

/** Bad configuration: the user has to edit `.env`. Exit code 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
}

/** IoT Hub's rule for device and module ids, here and in the local hub: 1-128 ASCII letters, digits, -.%_*?!(),:=@$' */
export const IDENTITY_ID_PATTERN: RegExp = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PLACEHOLDER_PATTERN = /<[^>]*>|\bYour[A-Za-z]*ConnectionString\b|\.\.\./i;

type Variable = "IOTHUB_CONNECTION_STRING" | "MODULE_CONNECTION_STRING";
const WHERE_TO_GET: Record<Variable, string> = {
  IOTHUB_CONNECTION_STRING:
    "get it with `az iot hub connection-string show --hub-name <hub> --policy-name serviceAndRegistryReadWrite` " +
    "or in the portal under Security settings > Shared access policies",
  MODULE_CONNECTION_STRING:
    "run `npx tsx CreateModule.ts` and copy the line it prints, or in the portal open Devices > <device> > <module>",
};
export type HubConfig = { connectionString: string; hostName: string; deviceId: string; moduleId: string };

/** The service side (CreateModule, UpdateModuleTwinDesiredProperties): hub connection string with a policy name. */
export function readServiceConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const { connectionString, fields, fail } = readConnectionString(env, "IOTHUB_CONNECTION_STRING");
  const wanted = "but this script needs the hub's service connection string with SharedAccessKeyName=...";
  if (fields.DeviceId) throw fail(`is a ${fields.ModuleId ? "module" : "device"} connection string, ${wanted}`);
  if (!fields.SharedAccessKeyName) throw fail("has no SharedAccessKeyName=...: use a shared access policy's string");
  const [deviceId, moduleId] = [readId(env, "DEVICE_ID", "myFirstDevice"), readId(env, "MODULE_ID", "myFirstModule")];
  return { connectionString, hostName: fields.HostName, deviceId, moduleId };
}

/** The module side (ReceiveModuleTwinDesiredPropertiesPatch): a module identity's connection string. */
export function readModuleConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const { connectionString, fields, fail } = readConnectionString(env, "MODULE_CONNECTION_STRING");
  if (fields.SharedAccessKeyName) throw fail("is the hub's service connection string, but the receiver is the module");
  if (!fields.DeviceId) throw fail("has no DeviceId=...: paste the whole module connection string");
  // The SDK would accept a device string here and then silently act as the device, not the module.
  if (!fields.ModuleId) throw fail("is a device connection string (no ModuleId=...): use the module's own string");
  return { connectionString, hostName: fields.HostName, deviceId: fields.DeviceId, moduleId: fields.ModuleId };
}

/** Reads a connection string and checks what every kind needs: set, not the placeholder, a HostName and a key. */
function readConnectionString(env: NodeJS.ProcessEnv, name: Variable) {
  // Read when asked, not on import (the local hub imports the id rule). Real environment variables win over `.env`
  // (dotenv never overrides); `quiet` keeps dotenv 17+ from printing a banner.
  dotenv.config({ quiet: true });
  const fail = (problem: string) => new ConfigError(`${name} ${problem} (${WHERE_TO_GET[name]}).`);
  const text = (env[name] ?? "").trim().replace(/^"(.*)"$/, "$1");
  if (!text) throw fail("is not set: copy .env.example to .env and fill it in");
  if (PLACEHOLDER_PATTERN.test(text)) throw fail("still holds the placeholder from .env.example: replace it");
  const fields = parseConnectionString(text);
  if (!fields.HostName) throw fail("has no HostName=...: paste the whole connection string");
  if (!fields.SharedAccessKey) throw fail("has no SharedAccessKey=...: paste the whole connection string");
  if (!BASE64_PATTERN.test(fields.SharedAccessKey))
    throw fail("has a key that is not base64 (cut off?): paste it again");
  return { connectionString: text, fields, fail };
}

function readId(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = (env[name] ?? "").trim() || fallback;
  if (IDENTITY_ID_PATTERN.test(value)) return value;
  throw new ConfigError(`${name}="${value}" is not an IoT Hub id: use 1-128 ASCII letters, digits, -.%_*?!(),:=@$'`);
}

/** Splits `Key=Value;Key=Value` into a map; values may contain `=` (base64 padding). */
export function parseConnectionString(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [, key, value] of text.matchAll(/([^;=\s][^;=]*?)\s*=([^;]*)/g)) fields[key] = value.trim();
  return fields;
}

export function buildModuleConnectionString(hostName: string, deviceId: string, moduleId: string, key: string): string {
  return `HostName=${hostName};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${key}`;
}

// Node reads NODE_EXTRA_CA_CERTS once, when it starts: it belongs in the shell's environment (.env comes too late).
const TRUST_LOCAL_CA =
  process.platform === "win32"
    ? '`$env:NODE_EXTRA_CA_CERTS="$PWD\\.localhub\\ca.pem"` (cmd: `set NODE_EXTRA_CA_CERTS=%CD%\\.localhub\\ca.pem`)'
    : "`export NODE_EXTRA_CA_CERTS=$PWD/.localhub/ca.pem`";
const HELP_401: Record<Variable, string> = {
  IOTHUB_CONNECTION_STRING: "its policy lacks Registry Write and Service Connect permissions",
  MODULE_CONNECTION_STRING: "the module was deleted or re-keyed: run CreateModule.ts again and copy the new string",
};
/** What the SDKs throw; the device SDK wraps the transport's error in `transportError`. */
type ErrorLike = { code?: string; name?: string; message?: string; response?: { statusCode?: number } } & {
  [wrapper in "transportError" | "cause" | "innerError"]?: ErrorLike;
};
const unwrap = (e: ErrorLike | undefined, depth = 0): ErrorLike[] =>
  e && typeof e === "object" && depth < 5 ? [e, ...unwrap(e.transportError ?? e.cause ?? e.innerError, depth + 1)] : [];

/** One line for a failure, without a stack trace or a secret; `variable` names the setting whose key was used. */
export function describeError(err: unknown, variable: Variable, env: NodeJS.ProcessEnv = process.env): string {
  if (err instanceof ConfigError) return err.message;
  const chain = unwrap(err as ErrorLike);
  const text = chain.map((e) => `${e.code ?? ""} ${e.name ?? ""} ${e.message ?? ""}`).join(" ");
  const status = chain.find((e) => e.response?.statusCode)?.response?.statusCode;
  const host = parseConnectionString(env[variable] ?? "").HostName ?? "the hub";
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return `Cannot find host ${host}: check HostName in ${variable}.`;
  if (/ECONNREFUSED/.test(text)) return `Connection to ${host} refused: is the hub running? (local: \`npm run hub\`)`;
  if (/certificate|_CERT|CERT_|UNABLE_TO_VERIFY|self[- ]signed/i.test(text)) {
    return `TLS certificate of ${host} is not trusted: for the local hub run ${TRUST_LOCAL_CA} before npx tsx.`;
  }
  if (status === 401 || /Unauthorized|Not authorized/i.test(text)) {
    const refused = `The hub refused the credentials in ${variable} (401 Unauthorized)`;
    return `${refused}: the key is wrong or expired, or ${HELP_401[variable]}.`;
  }
  // No key and no token signature may reach the output.
  const message = String(chain[0]?.message ?? err).replace(/(SharedAccessKey=|sig=)[^;&\s"']+/g, "$1****");
  if (status === 404 || /DeviceNotFound/.test(text)) return `Not found on ${host}: ${message}. Run CreateModule first.`;
  return `Failed: ${message}`;
}

/** Prints the one line for `err` on stderr and ends the process: 2 for configuration, 1 for everything else. */
export function exitWithError(err: unknown, variable: Variable): never {
  console.error(`Error: ${describeError(err, variable)}`);
  process.exit(err instanceof ConfigError ? err.exitCode : 1);
}
