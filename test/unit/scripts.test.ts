/** The decisions inside the scripts that the end-to-end tests cannot reach cheaply: argument rules, retry bounds, .env. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isAlreadyExists, saveToEnvFile, unlessItExists } from "../../CreateModule";
import {
  DEFAULT_TELEMETRY_INTERVAL,
  MAX_ATTEMPTS,
  parseTelemetryInterval,
  shouldRetry,
  withoutMetadata,
} from "../../UpdateModuleTwinDesiredProperties";
import { ConfigError } from "../../config";

const envFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "env-")), ".env");

describe("CreateModule", () => {
  it("treats a 409 as 'already exists', whatever error class the SDK picked", () => {
    expect(isAlreadyExists({ name: "DeviceAlreadyExistsError" })).toBe(true);
    expect(isAlreadyExists({ name: "Error", response: { statusCode: 409 } })).toBe(true);
    expect(isAlreadyExists({ name: "UnauthorizedError", response: { statusCode: 401 } })).toBe(false);
  });

  it("gives the created identity, nothing when it exists already, and passes any other error on", async () => {
    expect(await unlessItExists(Promise.resolve({ responseBody: { deviceId: "d" } }))).toEqual({ deviceId: "d" });
    const httpError = (statusCode: number) =>
      Object.assign(new Error(`HTTP ${statusCode}`), { response: { statusCode } });
    expect(await unlessItExists(Promise.reject(httpError(409)))).toBeUndefined();
    await expect(unlessItExists(Promise.reject(httpError(401)))).rejects.toThrow("HTTP 401");
  });
});

describe("CreateModule --write-env", () => {
  it("replaces the variable's line and keeps every other line", () => {
    const file = envFile();
    fs.writeFileSync(
      file,
      '# comment\nIOTHUB_CONNECTION_STRING="a"\nexport MODULE_CONNECTION_STRING=old\nDEVICE_ID=x\n',
    );
    saveToEnvFile(file, "MODULE_CONNECTION_STRING", "new;Key=v=");
    expect(fs.readFileSync(file, "utf8")).toBe(
      '# comment\nIOTHUB_CONNECTION_STRING="a"\nMODULE_CONNECTION_STRING="new;Key=v="\nDEVICE_ID=x\n',
    );
  });

  it("appends the line when the variable is missing, creating the file if needed", () => {
    const file = envFile();
    saveToEnvFile(file, "MODULE_CONNECTION_STRING", "v");
    saveToEnvFile(file, "DEVICE_ID", "d");
    expect(fs.readFileSync(file, "utf8")).toBe('MODULE_CONNECTION_STRING="v"\nDEVICE_ID="d"\n');
  });

  it("keeps the Windows line endings of a .env written on Windows", () => {
    const file = envFile();
    fs.writeFileSync(file, 'IOTHUB_CONNECTION_STRING="a"\r\nMODULE_CONNECTION_STRING=old\r\n');
    saveToEnvFile(file, "MODULE_CONNECTION_STRING", "new");
    saveToEnvFile(file, "DEVICE_ID", "d");
    expect(fs.readFileSync(file, "utf8")).toBe(
      'IOTHUB_CONNECTION_STRING="a"\r\nMODULE_CONNECTION_STRING="new"\r\nDEVICE_ID="d"\r\n',
    );
  });

  it("leaves no temporary file behind and keeps the key readable by its owner only (POSIX)", () => {
    const file = envFile();
    saveToEnvFile(file, "MODULE_CONNECTION_STRING", "v");
    expect(fs.readdirSync(path.dirname(file))).toEqual([".env"]);
    if (process.platform !== "win32") expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe("UpdateModuleTwinDesiredProperties", () => {
  it("uses the tutorial's 122 unless a whole number is given", () => {
    expect(parseTelemetryInterval([])).toBe(DEFAULT_TELEMETRY_INTERVAL);
    expect(DEFAULT_TELEMETRY_INTERVAL).toBe(122);
    expect(parseTelemetryInterval(["30"])).toBe(30);
    for (const bad of [["abc"], ["1.5"], ["-3"], ["1", "2"]])
      expect(() => parseTelemetryInterval(bad)).toThrow(ConfigError);
  });

  it("retries an etag conflict a bounded number of times and nothing else", () => {
    const conflict = { name: "InvalidEtagError", response: { statusCode: 412 } };
    expect(shouldRetry(conflict, 1)).toBe(true);
    expect(shouldRetry(conflict, MAX_ATTEMPTS - 1)).toBe(true);
    expect(shouldRetry(conflict, MAX_ATTEMPTS)).toBe(false);
    expect(shouldRetry({ name: "ArgumentError", response: { statusCode: 400 } }, 1)).toBe(false);
  });

  it("prints properties without the $metadata timestamps but with $version", () => {
    const props = {
      desired: { a: 1, $metadata: { $lastUpdated: "t" }, $version: 2 },
      reported: { $metadata: {}, $version: 1 },
    };
    expect(withoutMetadata(props)).toEqual({ desired: { a: 1, $version: 2 }, reported: { $version: 1 } });
  });
});
