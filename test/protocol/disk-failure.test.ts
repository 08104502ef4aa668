/**
 * A disk that fills up: the hub refuses the change it could not make durable (REST 503 ServiceUnavailable, MQTT twin
 * error 503001), keeps serving reads, logs one clear line, and takes writes again once space returns.
 */
import * as mqtt from "mqtt-packet";
import { FailingDisk } from "../helpers/failing-disk";
import { tempDir } from "../helpers/hub";
import {
  Device,
  ProtocolHub,
  connectAs,
  createDevice,
  expectStillServed,
  ownerToken,
  rest,
  startProtocolHub,
} from "../helpers/raw";

const disk = new FailingDisk();
const dataDir = tempDir("disk-");
const running: ProtocolHub[] = [];
let hub: ProtocolHub;
let device: Device;

beforeAll(async () => {
  hub = await startProtocolHub({ dataDir, inMemory: false, storeIo: disk });
  running.push(hub);
  device = await createDevice(hub.hub, "tank");
});
afterEach(() => {
  disk.full = false;
});
afterAll(() => Promise.all(running.map(({ hub }) => hub.stop())));

const patchDesired = (desired: object) =>
  rest(hub.hub, "PATCH", "/twins/tank", {
    token: ownerToken(hub.hub),
    body: JSON.stringify({ properties: { desired } }),
    headers: { "If-Match": "*" },
  });

it("a twin update the full disk cannot take gets 503 ServiceUnavailable, and one log line says why", async () => {
  const before = hub.log.length;
  disk.full = true;
  for (const attempt of [1, 2, 3]) {
    const response = await patchDesired({ attempt });
    expect(response.status).toBe(503);
    expect(response.headers["iothub-errorcode"]).toBe("ServiceUnavailable");
    expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ServiceUnavailable;/);
  }
  const diskLines = hub.log.slice(before).filter((line) => /disk|storage/i.test(line));
  expect(diskLines).toEqual([expect.stringMatching(/the disk is full/)]);
});

it("while the disk is full, reads are served and devices connect", async () => {
  disk.full = true;
  await patchDesired({ refused: true }); // leaves a change the store could not write
  expect((await rest(hub.hub, "GET", "/twins/tank", { token: ownerToken(hub.hub) })).status).toBe(200);
  expect((await rest(hub.hub, "GET", "/devices/tank", { token: ownerToken(hub.hub) })).status).toBe(200);
  await expectStillServed(hub);
});

it("a reported-properties update the full disk cannot take gets twin error 503001, and the connection stays", async () => {
  const { client, returnCode } = await connectAs(hub.hub, device.deviceId, device.token());
  expect(returnCode).toBe(0);
  client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
  await client.next("suback");
  disk.full = true;
  client.send({
    cmd: "publish",
    topic: "$iothub/twin/PATCH/properties/reported/?$rid=41",
    payload: JSON.stringify({ battery: 41 }),
    qos: 0,
    dup: false,
    retain: false,
  });
  const answer = await client.next<mqtt.IPublishPacket>("publish");
  expect(answer.topic).toBe("$iothub/twin/res/503/?$rid=41");
  expect(JSON.parse(answer.payload.toString())).toMatchObject({ errorCode: 503001 });
  client.send({ cmd: "pingreq" });
  await client.next("pingresp");
  client.end();
});

it("a subscription the full disk cannot remember is refused, not left unanswered", async () => {
  const other = await createDevice(hub.hub, "tank2");
  const { client } = await connectAs(hub.hub, other.deviceId, other.token());
  disk.full = true;
  client.send({ cmd: "subscribe", messageId: 7, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
  // MQTT 3.1.1 has no error SUBACK code but 0x80; closing the connection is the other honest answer.
  const outcome = await Promise.race([
    client.next<mqtt.ISubackPacket>("suback").then((suback) => suback.granted),
    client.closed.then(() => "closed"),
  ]);
  expect([[128], "closed"]).toContainEqual(outcome);
  client.end();
  await expectStillServed(hub);
});

it("once space returns, writes succeed again and survive a restart", async () => {
  disk.full = false;
  const response = await patchDesired({ recovered: true });
  expect(response.status).toBe(200);
  expect(hub.log.some((line) => /recovered|accepts writes again/i.test(line))).toBe(true);
  await hub.hub.stop();

  const restarted = await startProtocolHub({ dataDir, inMemory: false });
  running.push(restarted);
  const twin = JSON.parse((await rest(restarted.hub, "GET", "/twins/tank", { token: ownerToken(restarted.hub) })).body);
  expect(twin.properties.desired).toMatchObject({ recovered: true });
  await expectStillServed(restarted);
});
