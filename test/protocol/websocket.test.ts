/**
 * MQTT over WebSockets: a device that leaves is disconnected in the registry, and a frame over the maximum closes the
 * connection (1009) before the hub buffers it. After each, a valid client is still served.
 */
import * as mqtt from "mqtt-packet";
import {
  ProtocolHub,
  connectAs,
  createDevice,
  expectStillServed,
  ownerToken,
  rest,
  startProtocolHub,
  webSocket,
} from "../helpers/raw";
import { MAX_WEBSOCKET_FRAME_BYTES as FRAME_LIMIT } from "../localhub";

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub()));
afterAll(() => hub.hub.stop());

async function connectionState(deviceId: string): Promise<string> {
  const response = await rest(hub.hub, "GET", `/devices/${deviceId}`, { token: ownerToken(hub.hub) });
  return JSON.parse(response.body).connectionState;
}

/** Polls over REST: the registry's answer is what a service app sees. */
async function expectDisconnectedSoon(deviceId: string): Promise<void> {
  const deadline = Date.now() + 5000;
  let state: string;
  while ((state = await connectionState(deviceId)) !== "Disconnected" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(state).toBe("Disconnected");
}

async function connected(deviceId: string) {
  const device = await createDevice(hub.hub, deviceId);
  const { client, ws, returnCode } = await connectAs(hub.hub, device.deviceId, device.token(), "websocket");
  expect(returnCode).toBe(0);
  return { device, client, ws: ws! };
}

describe("a device over MQTT-over-WebSocket", () => {
  it.each([
    ["closes its WebSocket", "close"],
    ["sends DISCONNECT", "disconnect"],
    ["vanishes without a close frame", "terminate"],
  ] as const)("that %s is shown Disconnected", async (_how, how) => {
    const { device, client, ws } = await connected(`ws-${how}`);
    expect(await connectionState(device.deviceId)).toBe("Connected");
    if (how === "disconnect") client.send({ cmd: "disconnect" });
    else if (how === "close") ws.close();
    else ws.terminate();
    await expectDisconnectedSoon(device.deviceId);
    await expectStillServed(hub);
  });

  it("20 devices that connected and left are all shown Disconnected", async () => {
    const leavers = await Promise.all(Array.from({ length: 20 }, (_, i) => connected(`ws-leaver-${i}`)));
    for (const { ws } of leavers) ws.close();
    await Promise.all(leavers.map(({ client }) => client.closed));
    for (const { device } of leavers) await expectDisconnectedSoon(device.deviceId);
    await expectStillServed(hub);
  });
});

describe("a WebSocket frame over the maximum", () => {
  it("closes the connection with 1009 before authentication, and the hub keeps serving", async () => {
    const ws = await webSocket(hub.hub);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.on("error", () => {});
    ws.send(Buffer.alloc(8 * FRAME_LIMIT, 0x30));
    expect(await closed).toBe(1009);
    expect(hub.log.filter((line) => /frame|payload/i.test(line))).toHaveLength(1);
    await expectStillServed(hub);
  });

  it("is refused after authentication too", async () => {
    const { ws } = await connected("ws-big");
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.send(Buffer.alloc(FRAME_LIMIT + 1, 0x30));
    expect(await closed).toBe(1009);
    await expectStillServed(hub);
  });

  it("a frame of exactly the maximum is still accepted", async () => {
    const { device, client, ws } = await connected("ws-edge");
    // One frame: two telemetry messages just under 256 KB each, then PINGREQs (2 bytes each) up to the limit.
    const topic = `devices/${device.deviceId}/messages/events/`;
    const publish = (messageId: number, size: number) =>
      mqtt.generate({
        cmd: "publish",
        topic,
        payload: Buffer.alloc(size, 0x41),
        qos: 1,
        messageId,
        dup: false,
        retain: false,
      });
    const first = publish(5, 250 * 1024);
    let second = publish(6, 250 * 1024);
    if ((FRAME_LIMIT - first.length - second.length) % 2) second = publish(6, 250 * 1024 + 1);
    const pings = Buffer.alloc(FRAME_LIMIT - first.length - second.length);
    for (let i = 0; i < pings.length; i += 2) pings[i] = 0xc0;
    expect(first.length + second.length + pings.length).toBe(FRAME_LIMIT);
    ws.send(Buffer.concat([first, second, pings]));
    expect((await client.next<mqtt.IPubackPacket>("puback")).messageId).toBe(5);
    expect((await client.next<mqtt.IPubackPacket>("puback")).messageId).toBe(6);
    await client.next("pingresp");
    client.end();
  });
});
