/** Broken input never crashes the hub or corrupts its state: each gets the hub's error or a closed connection. */
import * as tls from "node:tls";
import * as mqtt from "mqtt";
import * as mqttPacket from "mqtt-packet";
import { Registry } from "azure-iothub";
import type { Hub } from "../localhub";
import { identityToken, policyToken, rawRequest, startTestHub, twinOf } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
const API = "?api-version=2021-04-12";

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "sturdy" });
  await registry.addModule({ deviceId: "sturdy", moduleId: "m" });
});
afterAll(() => hub.stop());

/** The hub still answers, and the module it had is still intact. */
async function expectHubHealthy(): Promise<void> {
  const module = (await registry.getModule("sturdy", "m")).responseBody;
  expect(module.moduleId).toBe("m");
}

function rawTls(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // resume(): without a reader, a socket that received data never reports its close
    const socket = tls.connect({ host: "localhost", port: 8883 }, () => resolve(socket)).resume();
    socket.on("error", reject);
  });
}

const closedWithin = (socket: { once(event: "close", listener: () => void): unknown }, ms: number) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => (clearTimeout(timer), resolve(true)));
  });

function connectPacket(clientId: string, password: string, keepalive = 60): Buffer {
  return mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: false,
    clientId,
    keepalive,
    username: `localhost/${clientId}/?api-version=2021-04-12`,
    password: Buffer.from(password),
  });
}

describe("REST", () => {
  const auth = () => policyToken(hub, "iothubowner");

  it("answers invalid JSON with 400 ArgumentInvalid", async () => {
    const response = await rawRequest("PUT", `/devices/broken${API}`, { authorization: auth(), body: "{not json" });
    expect(response.status).toBe(400);
    expect(response.headers["iothub-errorcode"]).toBe("ArgumentInvalid");
    expect((await registry.get("broken").catch((e) => e)).response.statusCode).toBe(404);
  });

  it("answers an oversized body with 413 and stores nothing", async () => {
    const body = JSON.stringify({ properties: { desired: { big: "x".repeat(300 * 1024) } } });
    const response = await rawRequest("PATCH", `/twins/sturdy/modules/m${API}`, {
      authorization: auth(),
      body,
      headers: { "If-Match": "*" },
    });
    expect(response.status).toBe(413);
    expect((await registry.getModuleTwin("sturdy", "m")).responseBody.properties.desired).not.toHaveProperty("big");
  });

  it("answers an unknown route with a clear 404, and a wrong method with 405", async () => {
    const unknown = await rawRequest("GET", `/nothing/here${API}`, { authorization: auth() });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body).Message).toMatch(/^ErrorCode:NotFound;No such resource: GET \/nothing\/here/);
    expect((await rawRequest("POST", `/devices/sturdy${API}`, { authorization: auth(), body: "{}" })).status).toBe(405);
    expect((await rawRequest("GET", `/devices/%E0%A4%A${API}`, { authorization: auth() })).status).toBe(400);
  });

  it("survives a client that hangs up in the middle of a request", async () => {
    const socket = tls.connect({ host: "localhost", port: 443 });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    socket.write(
      `PUT /devices/half${API} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${auth()}\r\nContent-Length: 100\r\n\r\n{"dev`,
    );
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expectHubHealthy();
    expect((await registry.get("half").catch((e) => e)).response.statusCode).toBe(404);
  });
});

describe("MQTT", () => {
  it("closes a connection that sends garbage, and keeps serving others", async () => {
    const socket = await rawTls();
    const closed = closedWithin(socket, 3000);
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]));
    expect(await closed).toBe(true);
    await expectHubHealthy();
  });

  it("closes a connection whose first packet is not CONNECT", async () => {
    const socket = await rawTls();
    const closed = closedWithin(socket, 3000);
    socket.write(mqttPacket.generate({ cmd: "pingreq" }));
    expect(await closed).toBe(true);
  });

  it("drops a client that stays silent past 1.5 times its keepalive", async () => {
    const socket = await rawTls();
    socket.write(connectPacket("sturdy/m", identityToken(hub, "sturdy", "m"), 1));
    const started = Date.now();
    expect(await closedWithin(socket, 4000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it("survives a client that vanishes mid-packet", async () => {
    const socket = await rawTls();
    const packet = connectPacket("sturdy/m", identityToken(hub, "sturdy", "m"));
    socket.write(packet.subarray(0, 10));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expectHubHealthy();
    expect(twinOf(hub, "sturdy", "m").connectionState).toBe("Disconnected");
  });

  it("answers a reported patch that is not JSON with a twin error, and refuses QoS 2 by closing", async () => {
    const client = await mqtt.connectAsync("mqtts://localhost:8883", {
      clientId: "sturdy/m",
      username: "localhost/sturdy/m/?api-version=2021-04-12",
      password: identityToken(hub, "sturdy", "m"),
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: false,
    });
    await client.subscribeAsync("$iothub/twin/res/#", { qos: 0 });
    const response = new Promise<{ topic: string; body: any }>((resolve) =>
      client.once("message", (topic, payload) => resolve({ topic, body: JSON.parse(payload.toString()) })),
    );
    client.publish("$iothub/twin/PATCH/properties/reported/?$rid=7", "{oops");
    expect(await response).toEqual({
      topic: "$iothub/twin/res/400/?$rid=7",
      body: { errorCode: 400004, message: expect.any(String) },
    });
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    client.publish("devices/sturdy/modules/m/messages/events/", "x", { qos: 2 });
    await closed;
    client.end(true);
    await expectHubHealthy();
  });
});
