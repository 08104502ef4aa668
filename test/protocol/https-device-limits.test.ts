/**
 * The HTTPS device API's limits, each refused before the bytes reach a parser, with one log line: a telemetry body
 * or batch over IoT Hub's 256 KB ("Create and read IoT Hub messages": messages and batches at most 256 KB), headers
 * over 16 KB in all or more than 1,000 of them, a batch that is not the SDK's JSON. The hub keeps serving after each.
 */
import * as tls from "node:tls";
import { MAX_HTTP_HEADERS, MAX_HTTP_HEADER_BYTES } from "../localhub";
import { Device, ProtocolHub, createDevice, expectStillServed, rest, startProtocolHub } from "../helpers/raw";

const BATCH = "application/vnd.microsoft.iothub.json";

let hub: ProtocolHub;
let device: Device;
beforeAll(async () => {
  hub = await startProtocolHub();
  device = await createDevice(hub.hub, "limits-http");
});
afterAll(() => hub.hub.stop());

const events = "/devices/limits-http/messages/events";
const stored = () =>
  hub.hub.core.telemetry.partitionInfo(0)!.lastSequenceNumber +
  hub.hub.core.telemetry.partitionInfo(1)!.lastSequenceNumber;

async function logged(attack: () => Promise<void>): Promise<string[]> {
  const before = hub.log.length;
  await attack();
  return hub.log.slice(before);
}

it("refuses a telemetry body over 256 KB by its Content-Length with 413, and takes one of exactly 256 KB", async () => {
  const before = stored();
  const lines = await logged(async () => {
    const answer = await rest(hub.hub, "POST", events, { token: device.token(), body: Buffer.alloc(256 * 1024 + 1) });
    expect(answer.status).toBe(413);
  });
  expect(lines).toEqual([expect.stringMatching(/^POST \/devices\/limits-http\/messages\/events 413 /)]);
  expect(stored()).toBe(before);
  const fits = await rest(hub.hub, "POST", events, { token: device.token(), body: Buffer.alloc(256 * 1024) });
  expect(fits.status).toBe(204);
});

it("refuses a batch whose messages add up to more than 256 KB, storing none of them", async () => {
  const before = stored();
  const half = Buffer.alloc(129 * 1024).toString("base64");
  const body = JSON.stringify([{ body: half }, { body: half }]);
  const answer = await rest(hub.hub, "POST", events, {
    token: device.token(),
    body,
    headers: { "Content-Type": BATCH },
  });
  expect([answer.status, answer.headers["iothub-errorcode"]]).toEqual([413, "MessageTooLarge"]);
  expect(stored()).toBe(before);
});

it.each([
  ["not JSON", "[{"],
  ["not an array", '{"body":"eA=="}'],
  ["empty", "[]"],
  ["a message without a body", '[{"properties":{}}]'],
  ["properties that are not an object", '[{"body":"eA==","properties":[1]}]'],
])("answers 400 to a batch that is %s", async (_what, body) => {
  const answer = await rest(hub.hub, "POST", events, {
    token: device.token(),
    body,
    headers: { "Content-Type": BATCH },
  });
  expect([answer.status, answer.headers["iothub-errorcode"]]).toEqual([400, "ArgumentInvalid"]);
});

it(`refuses more than ${MAX_HTTP_HEADERS} headers with 431 instead of dropping the rest`, async () => {
  const headers: Record<string, string> = {};
  for (let i = 0; i < MAX_HTTP_HEADERS; i++) headers[`h${i}`] = "v";
  const answer = await rest(hub.hub, "POST", events, { token: device.token(), body: "x", headers });
  expect(answer.status).toBe(431);
  await expectStillServed(hub);
});

it(`closes a request whose headers exceed ${MAX_HTTP_HEADER_BYTES / 1024} KB with 431 and one log line`, async () => {
  const lines = await logged(async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: hub.hub.ports.https, servername: "localhost" });
    await new Promise((resolve) => socket.once("secureConnect", resolve));
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    socket.on("error", () => {});
    socket.write(`POST ${events}?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n`);
    socket.write(`iothub-app-big: ${"v".repeat(MAX_HTTP_HEADER_BYTES)}\r\n\r\n`);
    await new Promise((resolve) => socket.once("close", resolve));
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
  });
  // (The previous test's probe may log its MQTT disconnect meanwhile.)
  expect(lines.filter((line) => !line.startsWith("MQTT"))).toEqual([
    expect.stringContaining(`headers exceed ${MAX_HTTP_HEADER_BYTES} bytes`),
  ]);
  await expectStillServed(hub);
});
