/**
 * Garbage on the MQTT port (over TLS, over WebSockets, and on the edge itself) closes that connection and nothing
 * else: after each, a valid device still connects and, over the network, a valid service client is still served.
 */
import * as mqtt from "mqtt-packet";
import {
  ProtocolHub,
  connectAs,
  connectPacket,
  createDevice,
  expectStillServed,
  mqttInMemory,
  mqttOverTls,
  mqttOverWebSocket,
  startProtocolHub,
  timeout,
} from "../helpers/raw";

const CONNECT_TIMEOUT_MS = 500;

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub({ limits: { connectTimeoutMs: CONNECT_TIMEOUT_MS } })));
afterAll(() => hub.hub.stop());

const GARBAGE: [string, () => Buffer][] = [
  ["bytes that are no MQTT packet", () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02])],
  ["a remaining length longer than four bytes", () => Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  ["a PINGREQ before CONNECT", () => mqtt.generate({ cmd: "pingreq" })],
  [
    "a PUBLISH before CONNECT",
    () => mqtt.generate({ cmd: "publish", topic: "a", payload: "b", qos: 0, dup: false, retain: false }),
  ],
  [
    "a CONNECT of MQTT 3.1 with a broken protocol name",
    () => Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x49, 0x73, 0x03, 0x02, 0x00, 0x3c, 0x00, 0x00]),
  ],
  ["an HTTP request", () => Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")],
];

describe.each(["tls", "websocket"] as const)("over %s", (transport) => {
  it("bytes that are no MQTT packet close the connection and the hub keeps serving", async () => {
    const client = transport === "tls" ? await mqttOverTls(hub.hub) : (await mqttOverWebSocket(hub.hub)).client;
    client.stream.write(GARBAGE[0][1]());
    await expect(Promise.race([client.closed.then(() => "closed"), timeout(3000)])).resolves.toBe("closed");
    await expectStillServed(hub, transport);
  });
});

// What follows is about the MQTT edge's parsing and rules, the same behind every transport: it runs over in-memory
// streams (MqttEdge.accept), without a handshake per case.
describe("on the MQTT edge", () => {
  it.each(GARBAGE)("%s closes the connection and the hub keeps serving", async (_what, bytes) => {
    const client = mqttInMemory(hub.hub);
    client.stream.write(bytes());
    await expect(Promise.race([client.closed.then(() => "closed"), timeout(3000)])).resolves.toBe("closed");
    await expectStillServed(hub, "memory");
  });

  it("a CONNECT with a wrong signature gets CONNACK 5 and the hub keeps serving", async () => {
    const device = await createDevice(hub.hub, "wrongKey");
    const forged = device.token().replace(/sig=[^&]+/, "sig=AAAA");
    const { client, returnCode } = await connectAs(hub.hub, device.deviceId, forged, "memory");
    expect(returnCode).toBe(5);
    await client.closed;
    await expectStillServed(hub, "memory");
  });

  it("a second CONNECT on a connected session closes it", async () => {
    const { client, returnCode } = await connectAs(hub.hub, hub.probe.deviceId, hub.probe.token(), "memory");
    expect(returnCode).toBe(0);
    client.send(connectPacket(hub.hub, hub.probe.deviceId, hub.probe.token()));
    await client.closed;
    await expectStillServed(hub, "memory");
  });

  it("a connection that sends nothing is dropped after the CONNECT timeout", async () => {
    const client = mqttInMemory(hub.hub);
    const started = Date.now();
    await expect(Promise.race([client.closed.then(() => "closed"), timeout(CONNECT_TIMEOUT_MS + 3000)])).resolves.toBe(
      "closed",
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    await expectStillServed(hub, "memory");
  });

  it("100 connections sending garbage at once are all closed, and the hub keeps serving", async () => {
    const clients = Array.from({ length: 100 }, () => mqttInMemory(hub.hub));
    for (const client of clients) client.stream.write(Buffer.from([0x00, 0x00, 0xde, 0xad]));
    await Promise.all(clients.map((client) => client.closed));
    await expectStillServed(hub, "memory");
  });

  it("a subscription to another device's topics is refused with 0x80", async () => {
    const { client } = await connectAs(hub.hub, hub.probe.deviceId, hub.probe.token(), "memory");
    client.send({
      cmd: "subscribe",
      messageId: 1,
      subscriptions: [{ topic: "devices/other/messages/devicebound/#", qos: 1 }],
    });
    expect((await client.next<mqtt.ISubackPacket>("suback")).granted).toEqual([128]);
    client.end();
  });

  it("a reported patch that is not JSON gets twin error 400004 and the connection stays", async () => {
    const { client } = await connectAs(hub.hub, hub.probe.deviceId, hub.probe.token(), "memory");
    client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
    await client.next("suback");
    client.send({
      cmd: "publish",
      topic: "$iothub/twin/PATCH/properties/reported/?$rid=9",
      payload: "{oops",
      qos: 0,
      dup: false,
      retain: false,
    });
    const answer = await client.next<mqtt.IPublishPacket>("publish");
    expect(answer.topic).toBe("$iothub/twin/res/400/?$rid=9");
    expect(JSON.parse(answer.payload.toString())).toMatchObject({ errorCode: 400004 });
    client.send({ cmd: "pingreq" });
    await client.next("pingresp");
    client.end();
  });
});
