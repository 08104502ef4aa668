/**
 * Telemetry and cloud-to-device messages the hub acknowledged survive a kill -9 of the hub process, and so do
 * completions, over MQTT, AMQP and HTTPS (azure-iot-device-http's sendEvent resolves on the 204, complete too).
 * One hub process takes the traffic of all three transports at once, is killed right after, and is started again on
 * the same directory; each test then checks what its transport was acknowledged.
 */
import * as path from "node:path";
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Client as DeviceClient, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { Amqp } from "azure-iot-device-amqp";
import { Http } from "azure-iot-device-http";
import { EventHubConsumerClient, ReceivedEventData, earliestEventPosition } from "@azure/event-hubs";
import { NODE_WITH_TSX } from "../helpers/paths";
import { ProcessRun, startProcess } from "../helpers/processes";
import { eventually, rawRequest, tempDir } from "../helpers/hub";
import { createSasToken, setPortMap } from "../localhub";

interface Running {
  run: ProcessRun;
  ports: { https: number; mqtt: number; amqp: number };
  iotHub: string;
  eventHub: string;
}

/** The hub as its own process, which prints one JSON line with its ports and connection strings once it serves. */
async function startHubProcess(dataDir: string): Promise<Running> {
  const [node, ...args] = NODE_WITH_TSX;
  const run = startProcess(node, [...args, path.join(__dirname, "messaging-hub-process.ts"), dataDir], {
    env: process.env,
    label: "the hub process",
  });
  try {
    await run.waitForOutput(/\n/, 20_000);
  } catch (err) {
    await run.stop();
    throw err;
  }
  const running = { run, ...JSON.parse(run.stdout.split("\n")[0]) } as Running;
  setPortMap({ 443: running.ports.https, 8883: running.ports.mqtt, 5671: running.ports.amqp });
  return running;
}

/** Reads every event of the hub from the start until `count` have come. */
async function readEvents(eventHub: string, count: number): Promise<ReceivedEventData[]> {
  const consumer = new EventHubConsumerClient("$Default", eventHub);
  const events: ReceivedEventData[] = [];
  const subscription = consumer.subscribe(
    {
      processEvents: (batch) => Promise.resolve(void events.push(...batch)),
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
  try {
    await eventually(() => events.length >= count, `${count} events`);
  } finally {
    await subscription.close();
    await consumer.close();
  }
  return events;
}

async function createDevice(iotHub: string, deviceId: string): Promise<string> {
  const device = (await Registry.fromConnectionString(iotHub).create({ deviceId })).responseBody;
  return `HostName=localhost;DeviceId=${deviceId};SharedAccessKey=${device.authentication!.symmetricKey!.primaryKey}`;
}

/** Over MQTT: 50 events, each acknowledged by its PUBACK, and one C2D message queued for later. */
async function beforeKillOverMqtt(iotHub: string, service: ServiceClient): Promise<string> {
  const connectionString = await createDevice(iotHub, "durable-mqtt");
  const client = DeviceClient.fromConnectionString(connectionString, Mqtt);
  await client.open();
  await Promise.all(Array.from({ length: 50 }, (_, i) => client.sendEvent(new Message(`mqtt reading ${i}`))));
  await service.send("durable-mqtt", new Message("for later"));
  await client.close();
  return connectionString;
}

/** Over AMQP: 50 events, each accepted once durable, one C2D message completed and one left pending. */
async function beforeKillOverAmqp(iotHub: string, service: ServiceClient): Promise<string> {
  const connectionString = await createDevice(iotHub, "durable-amqp");
  const client = DeviceClient.fromConnectionString(connectionString, Amqp);
  await client.open();
  await Promise.all(Array.from({ length: 50 }, (_, i) => client.sendEvent(new Message(`amqp reading ${i}`))));
  // An AMQP settlement has no answer; its feedback is the sign, announced once the completion is durable. The
  // SDK's feedback receiver accepts what it reads, so it is closed before the HTTPS completion gives feedback.
  const feedback: string[] = [];
  const receiver: any = (await service.getFeedbackReceiver()).result;
  receiver.on("message", (batch: any) => {
    for (const record of JSON.parse(batch.data.toString()))
      feedback.push(`${record.originalMessageId} ${record.statusCode}`);
  });
  client.on("message", (message: Message) => {
    if (message.data.toString() === "done") void client.complete(message);
  });
  for (const body of ["done", "pending"]) {
    await service.send("durable-amqp", Object.assign(new Message(body), { messageId: body, ack: "full" }));
  }
  await eventually(() => feedback.includes("done Success"), "the AMQP completion's feedback");
  await new Promise((resolve) => receiver.detach(resolve));
  await client.close();
  return connectionString;
}

/** Over HTTPS: 20 events and a batch of 2, each acknowledged by its 204. */
async function beforeKillOverHttps(iotHub: string): Promise<{ client: DeviceClient; connectionString: string }> {
  const connectionString = await createDevice(iotHub, "durable-http");
  const client = DeviceClient.fromConnectionString(connectionString, Http);
  await Promise.all(Array.from({ length: 20 }, (_, i) => client.sendEvent(new Message(`https reading ${i}`))));
  await client.sendEventBatch([new Message("batch a"), new Message("batch b")]);
  return { client, connectionString };
}

/** Then over HTTPS: a C2D message completed, which is acknowledged by a 204 and makes Success feedback. */
async function completeOverHttps(client: DeviceClient, service: ServiceClient): Promise<void> {
  await service.send(
    "durable-http",
    Object.assign(new Message("complete me"), { messageId: "done-http", ack: "full" }),
  );
  let completed = false;
  client.on("message", (message: Message) => {
    void client.complete(message).then(() => (completed = true));
  });
  await eventually(() => completed, "the completion over HTTPS");
}

const devices = { mqtt: "", http: "", amqp: "" };
let hub: Running;
let events: ReceivedEventData[] = [];
const eventsOf = (deviceId: string) =>
  events
    .filter((e) => e.systemProperties?.["iothub-connection-device-id"] === deviceId)
    .map((e) => Buffer.from(e.body as Buffer).toString());

beforeAll(async () => {
  const dataDir = tempDir();
  hub = await startHubProcess(dataDir);
  const service = ServiceClient.fromConnectionString(hub.iotHub);
  // The transports at once, so that the kill comes soon after each one's last acknowledgement.
  const [mqtt, amqp, http] = await Promise.all([
    beforeKillOverMqtt(hub.iotHub, service),
    beforeKillOverAmqp(hub.iotHub, service),
    beforeKillOverHttps(hub.iotHub),
  ]);
  await completeOverHttps(http.client, service);
  Object.assign(devices, { mqtt, amqp, http: http.connectionString });
  await service.close();
  await hub.run.stop(); // SIGKILL to its group: kill -9, right after the HTTPS completion's 204
  await http.client.close();
  hub = await startHubProcess(dataDir);
  events = await readEvents(hub.eventHub, 50 + 22 + 50);
}, 60_000);

afterAll(async () => {
  await hub?.run.stop();
  // The map is global to the process (jest runs later test files in it): leave it as found.
  setPortMap({});
});

it("keeps every telemetry message acknowledged over MQTT, and a queued C2D message, through a kill -9", async () => {
  expect(new Set(eventsOf("durable-mqtt")).size).toBe(50);
  const received: Message[] = [];
  const again = DeviceClient.fromConnectionString(devices.mqtt, Mqtt);
  again.on("message", (message: Message) => {
    received.push(message);
    void again.complete(message);
  });
  await again.open();
  try {
    await eventually(() => received.length === 1, "the C2D message");
    expect(received[0].data.toString()).toBe("for later");
  } finally {
    await again.close();
  }
});

it("keeps telemetry acknowledged over HTTPS and a completion made over HTTPS through a kill -9", async () => {
  expect(new Set(eventsOf("durable-http")).size).toBe(22);
  // The completion is on disk: its Success feedback is there and the message does not come back.
  const service = ServiceClient.fromConnectionString(hub.iotHub);
  try {
    const receiver: any = (await service.getFeedbackReceiver()).result;
    const records: { originalMessageId: string; statusCode: string }[] = [];
    receiver.on("message", (batch: any) => records.push(...JSON.parse(batch.data.toString())));
    await eventually(() => records.some((r) => r.originalMessageId === "done-http"), "the Success feedback");
    expect(records.find((r) => r.originalMessageId === "done-http")).toMatchObject({ statusCode: "Success" });
    const key = devices.http.split("SharedAccessKey=")[1];
    const token = createSasToken("localhost/devices/durable-http", key, Math.floor(Date.now() / 1000) + 600);
    const receive = await rawRequest("GET", "/devices/durable-http/messages/deviceBound?api-version=2021-04-12", {
      authorization: token,
    });
    expect(receive.status).toBe(204);
  } finally {
    await service.close();
  }
});

it("keeps telemetry accepted over AMQP and C2D completions made over AMQP through a kill -9", async () => {
  expect(new Set(eventsOf("durable-amqp")).size).toBe(50);
  const received: string[] = [];
  const again = DeviceClient.fromConnectionString(devices.amqp, Amqp);
  again.on("message", (message: Message) => {
    received.push(message.data.toString());
    void again.complete(message);
  });
  await again.open();
  try {
    await eventually(() => received.length === 1, "the C2D message left pending");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toEqual(["pending"]);
  } finally {
    await again.close();
  }
});
