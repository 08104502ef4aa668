/**
 * Telemetry and cloud-to-device messages the hub acknowledged survive a kill -9 of the hub process, and so do
 * completions: over MQTT, and over HTTPS (azure-iot-device-http's sendEvent resolves on the 204, complete too).
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

// The map is global to the process (jest runs later test files in it): leave it as found.
afterAll(() => setPortMap({}));

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

it("keeps every acknowledged telemetry message and queued C2D message through a kill -9", async () => {
  const dataDir = tempDir();
  let hub = await startHubProcess(dataDir);
  try {
    const registry = Registry.fromConnectionString(hub.iotHub);
    const device = (await registry.create({ deviceId: "durable-dev" })).responseBody;
    const key = device.authentication!.symmetricKey!.primaryKey;
    const client = DeviceClient.fromConnectionString(
      `HostName=localhost;DeviceId=durable-dev;SharedAccessKey=${key}`,
      Mqtt,
    );
    await client.open();
    // Each sendEvent resolves on the hub's PUBACK: from then on the message must not be lost.
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.sendEvent(new Message(`reading ${i}`))));
    const service = ServiceClient.fromConnectionString(hub.iotHub);
    await service.send("durable-dev", new Message("for later"));
    await service.close();
    await client.close();

    await hub.run.stop(); // SIGKILL to its group: kill -9
    hub = await startHubProcess(dataDir);

    const consumer = new EventHubConsumerClient("$Default", hub.eventHub);
    const events: ReceivedEventData[] = [];
    const subscription = consumer.subscribe(
      {
        processEvents: (batch) => Promise.resolve(void events.push(...batch)),
        processError: () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    try {
      await eventually(() => events.length >= 50, "50 events");
    } finally {
      await subscription.close();
      await consumer.close();
    }
    const bodies = events.map((e) => Buffer.from(e.body as Buffer).toString()).sort();
    expect(new Set(bodies).size).toBe(50);

    const received: Message[] = [];
    const again = DeviceClient.fromConnectionString(
      `HostName=localhost;DeviceId=durable-dev;SharedAccessKey=${key}`,
      Mqtt,
    );
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
  } finally {
    await hub.run.stop();
  }
});

it("keeps telemetry acknowledged over HTTPS and a completion made over HTTPS through a kill -9", async () => {
  const dataDir = tempDir();
  let hub = await startHubProcess(dataDir);
  try {
    const registry = Registry.fromConnectionString(hub.iotHub);
    const device = (await registry.create({ deviceId: "durable-http" })).responseBody;
    const key = device.authentication!.symmetricKey!.primaryKey;
    const connectionString = `HostName=localhost;DeviceId=durable-http;SharedAccessKey=${key}`;
    const client = DeviceClient.fromConnectionString(connectionString, Http);
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.sendEvent(new Message(`over https ${i}`))));
    await client.sendEventBatch([new Message("batch a"), new Message("batch b")]);
    const service = ServiceClient.fromConnectionString(hub.iotHub);
    await service.send("durable-http", Object.assign(new Message("complete me"), { messageId: "done", ack: "full" }));
    await service.close();
    let completed = false;
    client.on("message", (message: Message) => {
      void client.complete(message).then(() => (completed = true));
    });
    await eventually(() => completed, "the completion");
    await hub.run.stop(); // SIGKILL to its group: kill -9, right after the 204
    await client.close();
    hub = await startHubProcess(dataDir);

    const consumer = new EventHubConsumerClient("$Default", hub.eventHub);
    const events: ReceivedEventData[] = [];
    const subscription = consumer.subscribe(
      {
        processEvents: (batch) => Promise.resolve(void events.push(...batch)),
        processError: () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    try {
      await eventually(() => events.length >= 22, "22 events");
    } finally {
      await subscription.close();
      await consumer.close();
    }
    expect(new Set(events.map((e) => Buffer.from(e.body as Buffer).toString())).size).toBe(22);

    // The completion is on disk: its Success feedback is there and the message does not come back.
    const again = ServiceClient.fromConnectionString(hub.iotHub);
    try {
      const receiver: any = (await again.getFeedbackReceiver()).result;
      const records: any[] = [];
      receiver.on("message", (batch: any) => records.push(...JSON.parse(batch.data.toString())));
      await eventually(() => records.length === 1, "the Success feedback");
      expect(records[0]).toMatchObject({ originalMessageId: "done", statusCode: "Success" });
      const token = createSasToken("localhost/devices/durable-http", key, Math.floor(Date.now() / 1000) + 600);
      const receive = await rawRequest("GET", "/devices/durable-http/messages/deviceBound?api-version=2021-04-12", {
        authorization: token,
      });
      expect(receive.status).toBe(204);
    } finally {
      await again.close();
    }
  } finally {
    await hub.run.stop();
  }
});

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

it("keeps telemetry accepted over AMQP and C2D completions made over AMQP through a kill -9", async () => {
  const dataDir = tempDir();
  let hub = await startHubProcess(dataDir);
  try {
    const registry = Registry.fromConnectionString(hub.iotHub);
    const device = (await registry.create({ deviceId: "durable-amqp" })).responseBody;
    const connectionString = `HostName=localhost;DeviceId=durable-amqp;SharedAccessKey=${device.authentication!.symmetricKey!.primaryKey}`;
    const client = DeviceClient.fromConnectionString(connectionString, Amqp);
    await client.open();
    // Each sendEvent resolves when the hub accepts the transfer, which it does once the message is durable.
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.sendEvent(new Message(`amqp reading ${i}`))));
    const service = ServiceClient.fromConnectionString(hub.iotHub);
    const feedback: string[] = [];

    const receiver: any = (await service.getFeedbackReceiver()).result;

    receiver.on("message", (batch: any) => {
      for (const record of JSON.parse(batch.data.toString()))
        feedback.push(`${record.originalMessageId} ${record.statusCode}`);
      receiver.complete(batch, () => {});
    });
    client.on("message", (message: Message) => {
      if (message.data.toString() === "done") void client.complete(message);
    });
    for (const body of ["done", "pending"]) {
      await service.send("durable-amqp", Object.assign(new Message(body), { messageId: body, ack: "full" }));
    }
    // Feedback is announced once the completion is durable.
    await eventually(() => feedback.includes("done Success"), "the completion's feedback");
    await service.close();
    await client.close();

    await hub.run.stop(); // SIGKILL to its group: kill -9
    hub = await startHubProcess(dataDir);

    const events = await readEvents(hub.eventHub, 50);
    expect(new Set(events.map((e) => Buffer.from(e.body as Buffer).toString())).size).toBe(50);
    const received: string[] = [];
    const again = DeviceClient.fromConnectionString(connectionString, Amqp);
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
  } finally {
    await hub.run.stop();
  }
});
