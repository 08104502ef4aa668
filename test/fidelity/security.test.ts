/** Who may do what: SAS signatures, expiry, policy permissions, and identities kept apart on REST and MQTT. */
import * as mqtt from "mqtt";
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { createSasToken, type Hub } from "../localhub";
import { eventually, identityToken, policyToken, rawRequest, startTestHub } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
const API = "?api-version=2021-04-12";

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "alice" });
  await registry.create({ deviceId: "bob" });
  await registry.addModule({ deviceId: "alice", moduleId: "m" });
  await registry.addModule({ deviceId: "alice", moduleId: "other" });
});
afterAll(() => hub.stop());

const serviceString = (policy: string, key = hub.core.policies.find(policy)!.primaryKey) =>
  `HostName=${hub.hostName};SharedAccessKeyName=${policy};SharedAccessKey=${key}`;

/** Connects a bare MQTT 3.1.1 client; resolves with the CONNACK return code (0 = accepted). */
function mqttConnect(
  clientId: string,
  password: string,
  username = `${hub.hostName}/${clientId}/?api-version=2021-04-12`,
) {
  return new Promise<{ code: number; client: mqtt.MqttClient }>((resolve) => {
    const client = mqtt.connect(`mqtts://localhost:8883`, {
      clientId,
      username,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: false,
    });
    client.on("connect", () => resolve({ code: 0, client }));
    client.on("error", (err: any) => resolve({ code: err.code ?? -1, client }));
  });
}

describe("REST authentication", () => {
  it("refuses a request without a token, in the hub's error format", async () => {
    const response = await rawRequest("GET", `/devices/alice${API}`);
    expect(response.status).toBe(401);
    expect(response.headers["iothub-errorcode"]).toBe("IotHubUnauthorizedAccess");
    expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:IotHubUnauthorizedAccess;/);
  });

  it("refuses a wrong key as UnauthorizedError", async () => {
    const wrong = Registry.fromConnectionString(serviceString("iothubowner", Buffer.alloc(32, 9).toString("base64")));
    const err = await wrong.get("alice").catch((e) => e);
    expect(err.name).toBe("UnauthorizedError");
    expect(err.response.statusCode).toBe(401);
  });

  it("refuses an expired token and a token for another hub", async () => {
    expect(
      (await rawRequest("GET", `/devices/alice${API}`, { authorization: policyToken(hub, "iothubowner", true) }))
        .status,
    ).toBe(401);
    const key = hub.core.policies.find("iothubowner")!.primaryKey;
    const foreign = createSasToken("other.azure-devices.net", key, Math.floor(Date.now() / 1000) + 600, "iothubowner");
    expect((await rawRequest("GET", `/devices/alice${API}`, { authorization: foreign })).status).toBe(401);
  });

  it("accepts the secondary key too", async () => {
    const secondary = Registry.fromConnectionString(
      serviceString("iothubowner", hub.core.policies.find("iothubowner")!.secondaryKey),
    );
    expect((await secondary.get("alice")).responseBody.deviceId).toBe("alice");
  });

  it("gives each default policy only its permissions", async () => {
    const registryRead = Registry.fromConnectionString(serviceString("registryRead"));
    expect((await registryRead.get("alice")).responseBody.deviceId).toBe("alice");
    expect((await registryRead.create({ deviceId: "x1" }).catch((e) => e)).response.statusCode).toBe(401);

    const service = Registry.fromConnectionString(serviceString("service"));
    await service.updateModuleTwin("alice", "m", { properties: { desired: { fromService: 1 } } }, "*");
    expect((await service.create({ deviceId: "x2" }).catch((e) => e)).response.statusCode).toBe(401);
    expect((await service.get("alice").catch((e) => e)).response.statusCode).toBe(401);

    const readWrite = Registry.fromConnectionString(serviceString("registryReadWrite"));
    await readWrite.create({ deviceId: "x3" });
    expect(
      (await readWrite.updateModuleTwin("alice", "m", { properties: { desired: { a: 1 } } }, "*").catch((e) => e))
        .response.statusCode,
    ).toBe(401);

    const device = Registry.fromConnectionString(serviceString("device"));
    expect((await device.get("alice").catch((e) => e)).response.statusCode).toBe(401);
  });

  it("answers 401 to device and module tokens on the registry and twin APIs: they grant DeviceConnect only", async () => {
    const moduleToken = identityToken(hub, "alice", "m");
    const deviceToken = identityToken(hub, "alice");
    for (const authorization of [moduleToken, deviceToken]) {
      for (const path of ["/twins/alice/modules/m", "/twins/alice", "/devices/alice/modules/m", "/devices/alice"]) {
        expect((await rawRequest("GET", `${path}${API}`, { authorization })).status).toBe(401);
      }
    }
    const patch = JSON.stringify({ properties: { desired: { hacked: true } } });
    expect(
      (await rawRequest("PATCH", `/twins/alice/modules/m${API}`, { authorization: moduleToken, body: patch })).status,
    ).toBe(401);
  });

  it("limits a policy token to the resource its sr names, by whole path segment", async () => {
    const owner = hub.core.policies.find("iothubowner")!;
    const scoped = createSasToken(
      "localhost/devices/alice",
      owner.primaryKey,
      Math.floor(Date.now() / 1000) + 600,
      "iothubowner",
    );
    expect((await rawRequest("GET", `/devices/alice${API}`, { authorization: scoped })).status).toBe(200);
    expect((await rawRequest("GET", `/twins/alice/modules/m${API}`, { authorization: scoped })).status).toBe(200);
    expect((await rawRequest("GET", `/devices/bob${API}`, { authorization: scoped })).status).toBe(401);
    expect((await rawRequest("GET", `/devices${API}`, { authorization: scoped })).status).toBe(401);
  });
});

describe("MQTT authentication", () => {
  it("accepts a module's own token and refuses a wrong key with UnauthorizedError", async () => {
    const good = await mqttConnect("alice/m", identityToken(hub, "alice", "m"));
    expect(good.code).toBe(0);
    good.client.end(true);
    const wrongKey = `HostName=localhost;DeviceId=alice;ModuleId=m;SharedAccessKey=${Buffer.alloc(32, 3).toString("base64")}`;
    const client = ModuleClient.fromConnectionString(wrongKey, Mqtt);
    const err = await client.open().catch((e) => e);
    expect(err.name).toBe("UnauthorizedError");
    await client.close().catch(() => {});
  });

  it("refuses a token of one module used for another, an unknown identity and a bad username", async () => {
    expect((await mqttConnect("alice/other", identityToken(hub, "alice", "m"))).code).toBe(5);
    const ghostKey = Buffer.alloc(32, 4).toString("base64");
    const ghost = createSasToken("localhost/devices/ghost", ghostKey, Math.floor(Date.now() / 1000) + 600);
    expect((await mqttConnect("ghost", ghost)).code).toBe(5);
    expect((await mqttConnect("alice/m", identityToken(hub, "alice", "m"), "somewhere-else/alice/m/")).code).toBe(4);
    const expired = createSasToken(
      "localhost/devices/bob",
      hub.core.identities.find("bob")!.authentication.symmetricKey.primaryKey!,
      1,
    );
    expect((await mqttConnect("bob", expired)).code).toBe(5);
  });

  it("refuses a disabled device and drops its open connection", async () => {
    await registry.create({ deviceId: "carol" });
    const token = identityToken(hub, "carol");
    const { code, client } = await mqttConnect("carol", token);
    expect(code).toBe(0);
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    await registry.update({ deviceId: "carol", status: "disabled" });
    await closed;
    client.end(true);
    expect((await mqttConnect("carol", token)).code).toBe(5);
  });

  it("keeps one connection per identity: a new CONNECT drops the old one", async () => {
    const first = await mqttConnect("bob", identityToken(hub, "bob"));
    const firstClosed = new Promise<void>((resolve) => first.client.on("close", () => resolve()));
    const second = await mqttConnect("bob", identityToken(hub, "bob"));
    expect(second.code).toBe(0);
    await firstClosed;
    expect(second.client.connected).toBe(true);
    first.client.end(true);
    second.client.end(true);
  });

  it("never shows one identity another's twin or topics", async () => {
    const { client } = await mqttConnect("alice/m", identityToken(hub, "alice", "m"));
    expect((await client.subscribeAsync("$iothub/twin/res/#", { qos: 0 }))[0].qos).toBe(0);
    // mqtt.js turns a SUBACK return code 128 (refused) into an error
    await expect(client.subscribeAsync("devices/bob/messages/devicebound/#", { qos: 0 })).rejects.toMatchObject({
      packet: { granted: [128] },
    });
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    client.publish("devices/bob/messages/events/", "spoofed");
    await closed; // publishing to a topic it does not own ends the connection
    client.end(true);
  });

  it("only the addressed module receives its desired patch even with another module of the same device online", async () => {
    const m = await mqttConnect("alice/m", identityToken(hub, "alice", "m"));
    const other = await mqttConnect("alice/other", identityToken(hub, "alice", "other"));
    const received: string[] = [];
    for (const [name, c] of [
      ["m", m.client],
      ["other", other.client],
    ] as const) {
      await c.subscribeAsync("$iothub/twin/PATCH/properties/desired/#", { qos: 0 });
      c.on("message", () => received.push(name));
    }
    await registry.updateModuleTwin("alice", "other", { properties: { desired: { secret: 1 } } }, "*");
    await eventually(() => received.includes("other"), "the patch for 'other'");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual(["other"]);
    m.client.end(true);
    other.client.end(true);
  });
});
