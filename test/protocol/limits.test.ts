/**
 * Every buffer has a limit: a packet announced larger than the maximum (before or after authentication) is refused at
 * its header, with one log line, and a client that never reads its answers is disconnected instead of buffered.
 */
import * as mqtt from "mqtt-packet";
import {
  ProtocolHub,
  closedWithin,
  connectAs,
  createDevice,
  expectStillServed,
  ownerToken,
  rest,
  startProtocolHub,
  tlsConnect,
  timeout,
} from "../helpers/raw";
import { MQTT_LIMITS as LIMITS } from "../localhub";

const MB = 1024 * 1024;

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub()));
afterAll(() => hub.hub.stop());

/** A fixed header for packet type `type` announcing `length` bytes (MQTT's variable-length encoding). */
function header(type: number, length: number): Buffer {
  const bytes = [type];
  do {
    let digit = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) digit |= 0x80;
    bytes.push(digit);
  } while (length > 0);
  return Buffer.from(bytes);
}

/** The lines the hub logs while `attack` runs. */
async function logged(attack: () => Promise<void>): Promise<string[]> {
  const before = hub.log.length;
  await attack();
  return hub.log.slice(before);
}

describe("before authentication", () => {
  it("a packet announcing the maximum remaining length is dropped at its header, with one log line", async () => {
    const lines = await logged(async () => {
      const socket = await tlsConnect(hub.hub.ports.mqtt);
      socket.on("error", () => {});
      socket.write(header(0x10, 268_435_455)); // CONNECT, 256 MB
      socket.write(Buffer.alloc(64 * 1024, 0x41));
      expect(await closedWithin(socket, 2000)).toBe(true);
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/\n/);
    await expectStillServed(hub);
  });

  it("a CONNECT just over the pre-authentication maximum is dropped, and a normal CONNECT still fits", async () => {
    const socket = await tlsConnect(hub.hub.ports.mqtt);
    socket.on("error", () => {});
    socket.write(header(0x10, LIMITS.maxPacketBeforeConnectBytes + 1));
    expect(await closedWithin(socket, 2000)).toBe(true);
    await expectStillServed(hub); // a CONNECT with a SAS token is a few hundred bytes
  });

  it("4 connections announcing 256 MB each are all dropped, and the hub keeps serving", async () => {
    const sockets = await Promise.all(Array.from({ length: 4 }, () => tlsConnect(hub.hub.ports.mqtt)));
    for (const socket of sockets) {
      socket.on("error", () => {});
      socket.write(header(0x10, 268_435_455));
      socket.write(Buffer.alloc(MB, 0x41));
    }
    const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, 2000)));
    expect(closed).toEqual([true, true, true, true]);
    await expectStillServed(hub);
  });
});

describe("after authentication", () => {
  it("a packet announced over the maximum is refused at its header and the device disconnected, with one log line", async () => {
    const device = await createDevice(hub.hub, "oversized");
    const lines = await logged(async () => {
      const { client, returnCode } = await connectAs(hub.hub, device.deviceId, device.token());
      expect(returnCode).toBe(0);
      client.stream.write(header(0x30, 64 * MB)); // PUBLISH, 64 MB
      client.stream.write(Buffer.alloc(64 * 1024, 0x41));
      await expect(Promise.race([client.closed.then(() => "closed"), timeout(2000)])).resolves.toBe("closed");
    });
    const refusal = lines.filter((line) => !/CONNECT .* accepted/.test(line));
    expect(refusal).toEqual([expect.stringContaining(`larger than ${LIMITS.maxPacketBytes} bytes`)]);
    await expectStillServed(hub);
  });

  it("a telemetry message of 256 KB is accepted", async () => {
    const device = await createDevice(hub.hub, "fullSize");
    const { client } = await connectAs(hub.hub, device.deviceId, device.token());
    const topic = `devices/${device.deviceId}/messages/events/`;
    client.send({
      cmd: "publish",
      topic,
      payload: Buffer.alloc(256 * 1024, 0x41),
      qos: 1,
      messageId: 3,
      dup: false,
      retain: false,
    });
    expect((await client.next<mqtt.IPubackPacket>("puback")).messageId).toBe(3);
    client.end();
  });
});

describe("a client that never reads", () => {
  it("while asking for large twins is disconnected, and the hub's memory stays bounded", async () => {
    const device = await createDevice(hub.hub, "hog");
    const big = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`k${i}`, "x".repeat(4000)]));
    const patched = await rest(hub.hub, "PATCH", "/twins/hog", {
      token: ownerToken(hub.hub),
      body: JSON.stringify({ properties: { desired: big } }),
      headers: { "If-Match": "*" },
    });
    expect(patched.status).toBe(200);

    const { client } = await connectAs(hub.hub, device.deviceId, device.token());
    client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
    await client.next("suback");
    // Desired and reported near their 32 KB limits: each answer to a twin GET is about 56 KB.
    client.send({
      cmd: "publish",
      topic: "$iothub/twin/PATCH/properties/reported/?$rid=r",
      payload: JSON.stringify(big),
      qos: 0,
      dup: false,
      retain: false,
    });
    expect((await client.next<mqtt.IPublishPacket>("publish")).topic).toMatch(/^\$iothub\/twin\/res\/204\//);
    client.stream.pause(); // from here on, nothing is read: the answers pile up at the hub

    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    const lines = await logged(async () => {
      let gone = false;
      void client.closed.then(() => (gone = true));
      for (let i = 0; i < 5000 && !gone; i++) {
        const get = mqtt.generate({
          cmd: "publish",
          topic: `$iothub/twin/GET/?$rid=${i}`,
          payload: " ",
          qos: 0,
          dup: false,
          retain: false,
        });
        // The hub reads on while this client does not: wait for room, unless the hub has hung up.
        if (!client.stream.write(get))
          await Promise.race([new Promise((r) => client.stream.once("drain", r)), client.closed]);
        if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const deadline = Date.now() + 10_000;
      while ((await state("hog")) !== "Disconnected" && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
    });
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const after = await state("hog");
    client.end();

    expect(after).toBe("Disconnected");
    expect((peak - baseline) / MB).toBeLessThan(200);
    expect(lines.filter((line) => /read|buffer|backpressure/i.test(line)).length).toBeGreaterThanOrEqual(1);
    await expectStillServed(hub);
  });
});

async function state(deviceId: string): Promise<string> {
  const response = await rest(hub.hub, "GET", `/devices/${deviceId}`, { token: ownerToken(hub.hub) });
  return JSON.parse(response.body).connectionState;
}
