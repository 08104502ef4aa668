import * as fs from "node:fs";
import * as path from "node:path";
import {
  ConfigError,
  IDENTITY_ID_PATTERN,
  buildModuleConnectionString,
  describeError,
  parseConnectionString,
  readModuleConfig,
  readServiceConfig,
} from "../../config";

const KEY = Buffer.alloc(32, 7).toString("base64");
const SERVICE = `HostName=hub.example.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY}`;
const DEVICE = `HostName=hub.example.net;DeviceId=dev1;SharedAccessKey=${KEY}`;
const MODULE = `HostName=hub.example.net;DeviceId=dev1;ModuleId=mod1;SharedAccessKey=${KEY}`;

function configErrorOf(read: () => unknown): ConfigError {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).not.toContain(KEY);
    expect(message).not.toContain("\n");
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("readServiceConfig", () => {
  it("accepts a service connection string and defaults the tutorial's ids", () => {
    const config = readServiceConfig({ IOTHUB_CONNECTION_STRING: SERVICE });
    expect(config).toEqual({
      connectionString: SERVICE,
      hostName: "hub.example.net",
      deviceId: "myFirstDevice",
      moduleId: "myFirstModule",
    });
  });

  it("takes DEVICE_ID and MODULE_ID from the environment and strips surrounding quotes", () => {
    const config = readServiceConfig({ IOTHUB_CONNECTION_STRING: `"${SERVICE}"`, DEVICE_ID: "d-1", MODULE_ID: "m_1" });
    expect(config.connectionString).toBe(SERVICE);
    expect([config.deviceId, config.moduleId]).toEqual(["d-1", "m_1"]);
  });

  it("names the missing variable and how to get it", () => {
    const err = configErrorOf(() => readServiceConfig({}));
    expect(err.message).toMatch(/IOTHUB_CONNECTION_STRING is not set/);
    expect(err.message).toMatch(/az iot hub connection-string show/);
    expect(err.exitCode).toBe(2);
  });

  it("recognises the placeholder left from .env.example", () => {
    const example = fs.readFileSync(path.join(__dirname, "../../.env.example"), "utf8");
    const line = example.split("\n").find((l) => l.startsWith("IOTHUB_CONNECTION_STRING="))!;
    const value = line.slice(line.indexOf("=") + 1);
    expect(configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: value })).message).toMatch(/placeholder/);
  });

  it("refuses a device or module string where the service string belongs", () => {
    expect(configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: DEVICE })).message).toMatch(
      /is a device connection string/,
    );
    expect(configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: MODULE })).message).toMatch(
      /is a module connection string/,
    );
  });

  it("refuses strings without HostName, policy name or a base64 key", () => {
    expect(
      configErrorOf(() =>
        readServiceConfig({ IOTHUB_CONNECTION_STRING: `SharedAccessKeyName=a;SharedAccessKey=${KEY}` }),
      ).message,
    ).toMatch(/no HostName/);
    expect(
      configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: `HostName=h;SharedAccessKey=${KEY}` })).message,
    ).toMatch(/no SharedAccessKeyName/);
    expect(
      configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: "HostName=h;SharedAccessKeyName=a" })).message,
    ).toMatch(/no SharedAccessKey=/);
    const cutKey = `HostName=h;SharedAccessKeyName=a;SharedAccessKey=${KEY.slice(0, 30)}!`;
    const err = configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: cutKey }));
    expect(err.message).toMatch(/not base64/);
    expect(err.message).not.toContain(KEY.slice(0, 30));
  });

  it("refuses ids the hub would refuse", () => {
    expect(
      configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: SERVICE, DEVICE_ID: "has space" })).message,
    ).toMatch(/DEVICE_ID/);
    expect(
      configErrorOf(() => readServiceConfig({ IOTHUB_CONNECTION_STRING: SERVICE, MODULE_ID: "x".repeat(129) })).message,
    ).toMatch(/MODULE_ID/);
  });
});

describe("readModuleConfig", () => {
  it("accepts a module connection string", () => {
    expect(readModuleConfig({ MODULE_CONNECTION_STRING: MODULE })).toMatchObject({
      deviceId: "dev1",
      moduleId: "mod1",
      hostName: "hub.example.net",
    });
  });

  it("refuses a device string, which the SDK would silently use as the device", () => {
    expect(configErrorOf(() => readModuleConfig({ MODULE_CONNECTION_STRING: DEVICE })).message).toMatch(
      /device connection string \(no ModuleId/,
    );
  });

  it("refuses the service string", () => {
    expect(configErrorOf(() => readModuleConfig({ MODULE_CONNECTION_STRING: SERVICE })).message).toMatch(
      /service connection string/,
    );
  });

  it("names the missing variable and where the string comes from", () => {
    expect(configErrorOf(() => readModuleConfig({})).message).toMatch(
      /MODULE_CONNECTION_STRING is not set.*CreateModule\.ts/,
    );
  });
});

describe("connection strings", () => {
  it("builds a module string that parses back to its parts, with base64 padding intact", () => {
    const text = buildModuleConnectionString("h.net", "dev", "mod", "abc=");
    expect(parseConnectionString(text)).toEqual({
      HostName: "h.net",
      DeviceId: "dev",
      ModuleId: "mod",
      SharedAccessKey: "abc=",
    });
    expect(
      readModuleConfig({ MODULE_CONNECTION_STRING: buildModuleConnectionString("h", "d", "m", KEY) }).moduleId,
    ).toBe("m");
  });

  it("reads fields with spaces around them and keys with base64 padding", () => {
    expect(parseConnectionString(` HostName = h.net ; SharedAccessKey=${KEY};;junk`)).toEqual({
      HostName: "h.net",
      SharedAccessKey: KEY,
    });
  });
});

describe("IDENTITY_ID_PATTERN", () => {
  it("accepts what IoT Hub accepts: 1-128 ASCII letters, digits and -.%_*?!(),:=@$'", () => {
    for (const id of ["myFirstDevice", "a", "x".repeat(128), "-.%_*?!(),:=@$'", "D3v1ce"]) {
      expect(IDENTITY_ID_PATTERN.test(id)).toBe(true);
    }
  });

  it("refuses empty, too long, spaces, slashes, # and non-ASCII ids", () => {
    for (const id of ["", "x".repeat(129), "has space", "a/b", "a#b", "gerät", "a\nb", "a+b"]) {
      expect(IDENTITY_ID_PATTERN.test(id)).toBe(false);
    }
  });
});

describe("describeError", () => {
  const env = { IOTHUB_CONNECTION_STRING: SERVICE };
  const withCode = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

  it("explains unreachable hosts and refused connections", () => {
    expect(describeError(withCode("ENOTFOUND"), "IOTHUB_CONNECTION_STRING", env)).toMatch(
      /Cannot find host hub\.example\.net/,
    );
    expect(describeError(withCode("ECONNREFUSED"), "IOTHUB_CONNECTION_STRING", env)).toMatch(
      /refused: is the hub running\?.*npm run hub/,
    );
  });

  it("points an untrusted certificate at NODE_EXTRA_CA_CERTS, also when the SDK wraps the error", () => {
    const wrapped = Object.assign(new Error("NotConnectedError"), {
      transportError: withCode("SELF_SIGNED_CERT_IN_CHAIN"),
    });
    expect(describeError(wrapped, "MODULE_CONNECTION_STRING", env)).toMatch(/NODE_EXTRA_CA_CERTS/);
  });

  it("says which variable's key was refused on 401, without the key", () => {
    const err = Object.assign(new Error(`bad ${SERVICE}`), {
      name: "UnauthorizedError",
      response: { statusCode: 401 },
    });
    const line = describeError(err, "IOTHUB_CONNECTION_STRING", env);
    expect(line).toMatch(/refused the credentials in IOTHUB_CONNECTION_STRING.*Registry Write and Service Connect/);
    expect(line).not.toContain(KEY);
  });

  it("never repeats a key or a token signature from an unknown error", () => {
    const line = describeError(
      new Error(`boom ${MODULE} SharedAccessSignature sr=x&sig=abc%2F&se=1`),
      "MODULE_CONNECTION_STRING",
      {},
    );
    expect(line).not.toContain(KEY);
    expect(line).not.toContain("abc%2F");
    expect(line).toMatch(/^Failed: boom .*SharedAccessKey=\*\*\*\*.*sig=\*\*\*\*&se=1$/);
  });

  it("tells a missing module apart and points at CreateModule", () => {
    const err = Object.assign(new Error("Device not found"), {
      name: "DeviceNotFoundError",
      response: { statusCode: 404 },
    });
    expect(describeError(err, "MODULE_CONNECTION_STRING", { MODULE_CONNECTION_STRING: MODULE })).toBe(
      "Not found on hub.example.net: Device not found. Run CreateModule first.",
    );
  });
});
