/**
 * The AMQP twin and method links where a device sends what the SDK never would: an unknown twin operation, more twin
 * requests at once than the hub serves, no credit for what the hub pushes, a method answer over 128 KB. Each gets a
 * bounded, named answer; the hub goes on serving. A bare rhea client plays the device (the SDK cannot be made to).
 */
import * as fs from "node:fs";
import { randomUUID } from "node:crypto";
import type { Connection, EventContext, Message, Receiver, Sender } from "rhea";
import { create_container, message as amqpMessage } from "rhea";
import { Client as ServiceClient, Registry } from "azure-iothub";
import { AMQP_LIMITS, type Hub } from "../localhub";
import { HeldBackStore } from "../helpers/held-back-store";
import { eventually, identityToken, startTestHub, tempDir } from "../helpers/hub";

const store = new HeldBackStore();
let hub: Hub;
const logged: string[] = [];
const connections: Connection[] = [];

beforeAll(async () => {
  hub = await startTestHub(tempDir(), { store, log: (line) => logged.push(line) });
  const registry = Registry.fromConnectionString(hub.connectionString);
  for (const deviceId of ["raw-twin", "raw-methods"]) await registry.create({ deviceId });
});
afterEach(() => {
  store.release();
  for (const connection of connections.splice(0)) connection.close();
});
afterAll(() => hub.stop());

const once = <T>(emitter: { once(event: string, listener: (context: EventContext) => void): unknown }, event: string) =>
  new Promise<EventContext>((resolve) => emitter.once(event, resolve)) as Promise<T & EventContext>;

/** A device connection as the SDK makes it: TLS, SASL ANONYMOUS, a CBS put-token for the device. */
async function connectDevice(deviceId: string): Promise<Connection> {
  const connection = create_container().connect({
    host: "localhost",
    port: hub.ports.amqp,
    transport: "tls",
    servername: "localhost",
    ca: fs.readFileSync(hub.caPath),
    hostname: "localhost",
    reconnect: false,
  });
  connections.push(connection);
  connection.on("disconnected", () => {}); // the hub stopping at the end is no news
  await once(connection, "connection_open");
  const cbsSender = connection.open_sender("$cbs");
  const cbsReceiver = connection.open_receiver({ source: { address: "$cbs" } });
  await once(cbsSender, "sendable");
  cbsSender.send({
    message_id: randomUUID(),
    reply_to: "cbs",
    application_properties: {
      operation: "put-token",
      type: "servicebus.windows.net:sastoken",
      name: `localhost%2Fdevices%2F${deviceId}`,
    },
    body: identityToken(hub, deviceId),
  });
  const answer = await once(cbsReceiver, "message");
  expect(answer.message!.application_properties!["status-code"]).toBe(200);
  return connection;
}

/** The SDK's pair of links on one address, sharing a channel correlation id; `credit` 0 gives the hub none. */
async function openPair(
  connection: Connection,
  address: string,
  credit = 100,
): Promise<{ send: Sender; receive: Receiver }> {
  const properties = {
    "com.microsoft:channel-correlation-id": `test:${randomUUID()}`,
    "com.microsoft:api-version": "2021-04-12",
  };
  const send = connection.open_sender({ target: { address }, properties, snd_settle_mode: 1 });
  const receive = connection.open_receiver({
    source: { address },
    properties,
    credit_window: credit,
    autoaccept: true,
  });
  await Promise.all([once(send, "sender_open"), once(receive, "receiver_open")]);
  return { send, receive };
}

const twinRequest = (operation: string, resource?: string, body = " "): Message => ({
  correlation_id: randomUUID(),
  message_annotations: { operation, ...(resource ? { resource } : {}) },
  body: amqpMessage.data_section(Buffer.from(body)) as unknown,
});

const statusOf = (message: Message) => (message.message_annotations as { status?: number } | undefined)?.status;

it("answers an unknown twin operation with status 400 on the same correlation id, and serves the next request", async () => {
  const { send, receive } = await openPair(await connectDevice("raw-twin"), "/devices/raw-twin/twin");
  const answers: Message[] = [];
  receive.on("message", (context: EventContext) => answers.push(context.message!));
  const bad = twinRequest("POST", "/properties/desired");
  send.send(bad);
  send.send(twinRequest("GET"));
  await eventually(() => answers.length === 2, "both answers");
  expect(answers[0].correlation_id).toBe(bad.correlation_id);
  expect(statusOf(answers[0])).toBe(400);
  expect(statusOf(answers[1])).toBe(200);
});

it(`answers twin requests past ${AMQP_LIMITS.MAX_TWIN_REQUESTS_IN_FLIGHT} at once with 429, then serves again`, async () => {
  const { send, receive } = await openPair(await connectDevice("raw-twin"), "/devices/raw-twin/twin");
  const statuses: (number | undefined)[] = [];
  receive.on("message", (context: EventContext) => statuses.push(statusOf(context.message!)));
  store.hold();
  const limit = AMQP_LIMITS.MAX_TWIN_REQUESTS_IN_FLIGHT;
  for (let n = 0; n <= limit; n++) send.send(twinRequest("PATCH", "/properties/reported", JSON.stringify({ n })));
  await eventually(() => statuses.length === 1, "the refusal of the request past the limit");
  expect(statuses).toEqual([429]);
  store.release();
  await eventually(() => statuses.length === limit + 1, "the held requests' answers");
  expect(statuses.slice(1).every((status) => status === 204)).toBe(true);
});

it(`closes a twin link that gives no credit once ${AMQP_LIMITS.MAX_DEVICE_LINK_BACKLOG} desired patches wait for it`, async () => {
  const { send, receive } = await openPair(await connectDevice("raw-twin"), "/devices/raw-twin/twin", 0);
  const subscribed = logged.length;
  send.send(twinRequest("PUT", "/notifications/twin/properties/desired"));
  await eventually(() => logged.slice(subscribed).some((line) => line.startsWith("AMQP TWIN raw-twin PUT 200")), "PUT");
  const closed = once(receive, "receiver_close");
  for (let n = 0; n <= AMQP_LIMITS.MAX_DEVICE_LINK_BACKLOG; n++) {
    await hub.core.twins.patch("raw-twin", undefined, { properties: { desired: { n } } }, "*");
  }
  const error = (await closed).receiver!.error as { condition?: string };
  expect(error.condition).toBe("amqp:resource-limit-exceeded");
  expect(logged.some((line) => /closed the twin link .*more than 1000 messages/.test(line))).toBe(true);
});

it("fails a method call at once with 502 when the device's answer is over 128 KB", async () => {
  const { send, receive } = await openPair(
    await connectDevice("raw-methods"),
    "/devices/raw-methods/methods/devicebound",
  );
  receive.on("message", (context: EventContext) => {
    const call = context.message!;
    send.send({
      correlation_id: call.correlation_id,
      application_properties: { "IoThub-status": 200 },
      body: amqpMessage.data_section(Buffer.from(JSON.stringify("x".repeat(130 * 1024)))) as unknown,
    });
  });
  const service = ServiceClient.fromConnectionString(hub.connectionString);
  try {
    const started = Date.now();
    const err = await service
      .invokeDeviceMethod("raw-methods", { methodName: "big", payload: null, responseTimeoutInSeconds: 30 })
      .catch((e: { name?: string; response?: { statusCode?: number } }) => e);
    expect(err).toMatchObject({ name: "BadDeviceResponseError", response: { statusCode: 502 } });
    expect(Date.now() - started).toBeLessThan(10_000);
  } finally {
    await service.close().catch(() => {});
  }
});
