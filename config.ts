/**
 * @summary The one helper the three tutorial scripts share: reads `.env`, checks the connection strings before any
 * network call, and turns the errors a newcomer meets into one clear line and an exit code.
 */
import * as fs from "node:fs";
import * as dotenv from "dotenv";

// Real environment variables win over `.env` (dotenv never overrides); `quiet` keeps dotenv 17+ from printing a banner.
dotenv.config({ quiet: true });

/** Bad configuration: the user has to edit `.env`. Exit code 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
}

const SERVICE_STRING_HELP =
  "get it with `az iot hub connection-string show --hub-name <hub> --policy-name serviceAndRegistryReadWrite` " +
  "or in the portal under Security settings > Shared access policies";
const MODULE_STRING_HELP =
  "run `npx tsx CreateModule.ts` and copy the line it prints, or in the portal open Devices > <device> > <module>";

export interface HubConfig {
  connectionString: string;
  hostName: string;
  deviceId: string;
  moduleId: string;
}

/** Splits `Key=Value;Key=Value` into a map; values may contain `=` (base64 padding). */
export function parseConnectionString(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of text.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) fields[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return fields;
}

export function buildModuleConnectionString(hostName: string, deviceId: string, moduleId: string, key: string): string {
  return `HostName=${hostName};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${key}`;
}

/** Shows that a value is set without revealing it: `abcd…(44 chars)`. */
export function maskSecret(secret: string): string {
  return secret.length <= 8 ? "****" : `${secret.slice(0, 4)}…(${secret.length} chars)`;
}

/** Replaces every `SharedAccessKey=...` and `sig=...` in a text, so that no message leaks a key. */
export function redactSecrets(text: string): string {
  return text.replace(/(SharedAccessKey=)[^;\s"']+/g, "$1****").replace(/(sig=)[^&\s"']+/g, "$1****");
}

const ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function looksLikePlaceholder(value: string): boolean {
  return /<[^>]*>|\bYour[A-Za-z]*ConnectionString\b|\.\.\./i.test(value);
}

function readVariable(env: NodeJS.ProcessEnv, name: string, help: string): string {
  const value = (env[name] ?? "").trim().replace(/^"(.*)"$/, "$1");
  if (!value) {
    throw new ConfigError(`${name} is not set: copy .env.example to .env and fill it in (${help}).`);
  }
  if (looksLikePlaceholder(value)) {
    throw new ConfigError(`${name} still holds the placeholder from .env.example: replace it (${help}).`);
  }
  return value;
}

function readId(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = (env[name] ?? "").trim() || fallback;
  if (!ID_PATTERN.test(value)) {
    throw new ConfigError(
      `${name}="${value}" is not a valid IoT Hub id: use 1-128 ASCII letters, digits or - . % _ * ? ! ( ) , : = @ $ '.`,
    );
  }
  return value;
}

function checkKey(name: string, key: string | undefined, help: string): void {
  if (!key) throw new ConfigError(`${name} has no SharedAccessKey=...: paste the whole connection string (${help}).`);
  if (!BASE64_PATTERN.test(key)) {
    throw new ConfigError(
      `${name} has a SharedAccessKey that is not base64 (cut off or mistyped?): paste it again (${help}).`,
    );
  }
}

/** Reads a connection string variable and splits it; every kind needs a HostName. */
function readConnectionString(env: NodeJS.ProcessEnv, name: string, help: string) {
  const connectionString = readVariable(env, name, help);
  const fields = parseConnectionString(connectionString);
  if (!fields.HostName) {
    throw new ConfigError(`${name} has no HostName=...: paste the whole connection string (${help}).`);
  }
  return { connectionString, fields, hostName: fields.HostName };
}

/** The service side (CreateModule, UpdateModuleTwinDesiredProperties): hub connection string with a policy name. */
export function readServiceConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const name = "IOTHUB_CONNECTION_STRING";
  const { connectionString, fields, hostName } = readConnectionString(env, name, SERVICE_STRING_HELP);
  if (fields.DeviceId) {
    throw new ConfigError(
      `${name} is a ${fields.ModuleId ? "module" : "device"} connection string, but this script needs the hub's ` +
        `service connection string with SharedAccessKeyName=... (${SERVICE_STRING_HELP}).`,
    );
  }
  if (!fields.SharedAccessKeyName) {
    throw new ConfigError(
      `${name} has no SharedAccessKeyName=...: use a shared access policy's connection string (${SERVICE_STRING_HELP}).`,
    );
  }
  checkKey(name, fields.SharedAccessKey, SERVICE_STRING_HELP);
  return {
    connectionString,
    hostName,
    deviceId: readId(env, "DEVICE_ID", "myFirstDevice"),
    moduleId: readId(env, "MODULE_ID", "myFirstModule"),
  };
}

/** The module side (ReceiveModuleTwinDesiredPropertiesPatch): a module identity's connection string. */
export function readModuleConfig(env: NodeJS.ProcessEnv = process.env): HubConfig {
  const name = "MODULE_CONNECTION_STRING";
  const { connectionString, fields, hostName } = readConnectionString(env, name, MODULE_STRING_HELP);
  if (fields.SharedAccessKeyName) {
    throw new ConfigError(
      `${name} is the hub's service connection string, but the receiver connects as a module: ` +
        `use the module's own connection string (${MODULE_STRING_HELP}).`,
    );
  }
  if (!fields.DeviceId) {
    throw new ConfigError(
      `${name} has no DeviceId=...: paste the whole module connection string (${MODULE_STRING_HELP}).`,
    );
  }
  // The SDK would accept a device string here and then silently act as the device, not the module.
  if (!fields.ModuleId) {
    throw new ConfigError(
      `${name} is a device connection string (no ModuleId=...): use the module's connection string (${MODULE_STRING_HELP}).`,
    );
  }
  checkKey(name, fields.SharedAccessKey, MODULE_STRING_HELP);
  return { connectionString, hostName, deviceId: fields.DeviceId, moduleId: fields.ModuleId };
}

/** Sets `NAME=value` in an env file: replaces the line that sets NAME, or appends one; other lines stay as they were. */
export function saveToEnvFile(file: string, name: string, value: string): void {
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  const lines = text.length ? text.replace(/\r?\n$/, "").split(/\r?\n/) : [];
  const line = `${name}="${value}"`;
  const at = lines.findIndex((l) => new RegExp(`^\\s*(export\\s+)?${name}\\s*=`).test(l));
  if (at >= 0) lines[at] = line;
  else lines.push(line);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, lines.join("\n") + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
}

const TLS_ERROR_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** An error and the errors it wraps: the device SDK nests the transport's error in `transportError`. */
function errorChain(err: unknown): any[] {
  const chain: any[] = [];
  for (
    let e: any = err;
    e && typeof e === "object" && !chain.includes(e);
    e = e.transportError ?? e.cause ?? e.innerError
  ) {
    chain.push(e);
  }
  return chain;
}

/**
 * One line for a failure, without a stack trace and without secrets.
 * `variable` names the setting whose connection string was used, so that a 401 says which key to check.
 */
export function describeError(err: unknown, variable: string, env: NodeJS.ProcessEnv = process.env): string {
  if (err instanceof ConfigError) return err.message;
  const chain = errorChain(err);
  const cause = {
    code: chain.find((e) => typeof e.code === "string")?.code as string | undefined,
    name: chain.find((e) => e.name && e.name !== "Error")?.name as string | undefined,
    status: chain.find((e) => e.response?.statusCode)?.response.statusCode as number | undefined,
    message: String(chain[0]?.message ?? err),
  };
  const host = parseConnectionString(env[variable] ?? "").HostName ?? "the hub";
  const text = chain.map((e) => `${e.code ?? ""} ${e.name ?? ""} ${e.message ?? ""}`).join(" ");
  if (cause.code === "ENOTFOUND" || cause.code === "EAI_AGAIN") {
    return `Cannot find host ${host}: check HostName in ${variable} (is the hub name spelled right?).`;
  }
  if (cause.code === "ECONNREFUSED" || /ECONNREFUSED/.test(text)) {
    return `Connection to ${host} refused: is the hub running? For the local hub start it with \`npm run hub\`.`;
  }
  if (
    (cause.code && TLS_ERROR_CODES.has(cause.code)) ||
    /self[- ]signed certificate|unable to verify|certificate/i.test(text)
  ) {
    return (
      `TLS certificate of ${host} is not trusted: for the local hub run ` +
      "`export NODE_EXTRA_CA_CERTS=$PWD/.localhub/ca.pem` (the line `npm run hub` prints) before npx tsx."
    );
  }
  if (cause.status === 401 || cause.name === "UnauthorizedError" || /Not authorized|Unauthorized/i.test(text)) {
    return (
      `The hub refused the credentials in ${variable} (401 Unauthorized): the key is wrong or expired, ` +
      (variable === "IOTHUB_CONNECTION_STRING"
        ? "or its policy lacks Registry Write and Service Connect permissions."
        : "or the module was deleted or re-keyed: run CreateModule.ts again and copy the new string.")
    );
  }
  if (cause.name === "DeviceNotFoundError" || cause.status === 404) {
    return `Not found on ${host}: ${redactSecrets(cause.message)}. Run \`npx tsx CreateModule.ts\` first.`;
  }
  return `Failed: ${redactSecrets(cause.message)}`;
}

/** Prints the one line for `err` on stderr and ends the process: 2 for configuration, 1 for everything else. */
export function exitWithError(err: unknown, variable: string): never {
  console.error(`Error: ${describeError(err, variable)}`);
  process.exit(err instanceof ConfigError ? err.exitCode : 1);
}
