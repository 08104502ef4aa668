/**
 * Telemetry and cloud-to-device messages of devices and modules over `Amqp` and `AmqpWs`, unmodified: telemetry read
 * back by EventHubConsumerClient with the properties IoT Hub stamps, the 256 KB limit, and C2D complete / reject /
 * abandon (azure-iot-amqp-base receiver_link.js: accepted, rejected, released) with the feedback the service reads.
 */
import { EventHubConsumerClient, ReceivedEventData, earliestEventPosition } from "@azure/event-hubs";
import { Registry, Client as ServiceClient } from "azure-iothub";
import { Client, Message, ModuleClient, SharedAccessKeyAuthenticationProvider } from "azure-iot-device";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub } from "../helpers/hub";
import { message } from "../helpers/messages";

let hub: Hub;
let registry: Registry;
let service: ServiceClient;
let consumer: EventHubConsumerClient;
const events: ReceivedEventData[] = [];
const hubLog: string[] = [];

const feedback: any[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  hub = await startTestHub(undefined, { log: (line) => hubLog.push(line) });
  registry = Registry.fromConnectionString(hub.connectionString);
  service = ServiceClient.fromConnectionString(hub.connectionString);

  const receiver: any = (await service.getFeedbackReceiver()).result;

  receiver.on("message", (batch: any) => {
    feedback.push(...JSON.parse(batch.data.toString()));
    receiver.complete(batch, () => {});
  });
  consumer = new EventHubConsumerClient("$Default", hub.eventHubConnectionString());
  consumer.subscribe(
    {
      processEvents: (batch) => Promise.resolve(void events.push(...batch)),
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(async () => {
  await consumer.close();
  await service.close();
  await hub.stop();
});

async function open<T extends Client | ModuleClient>(client: T): Promise<T> {
  closers.push(() => client.close());
  await client.open();
  return client;
}

describe.each([
  ["Amqp", Amqp],
  ["AmqpWs", AmqpWs],
])("%s", (name, transport) => {
  const deviceId = `${name}-msg`;
  beforeAll(async () => {
    await registry.create({ deviceId });
    await registry.addModule({ deviceId, moduleId: "filter" });
  });

  it("telemetry of a device and a module is read back by EventHubConsumerClient with IoT Hub's properties", async () => {
    const device = await open(Client.fromConnectionString(moduleConnectionString(hub, deviceId), transport));
    const sent = message(
      '{"t":21}',
      { messageId: `${name}-m1`, correlationId: "c1", contentType: "application/json", contentEncoding: "utf-8" },
      { alert: "hot" },
    );
    await device.sendEvent(sent);
    const module = await open(
      ModuleClient.fromConnectionString(moduleConnectionString(hub, deviceId, "filter"), transport),
    );
    await module.sendOutputEvent("alerts", message("filtered", {}, { level: "2" }));
    await eventually(
      () => events.filter((e) => e.systemProperties?.["iothub-connection-device-id"] === deviceId).length >= 2,
      "2 events",
    );
    const mine = events.filter((e) => e.systemProperties?.["iothub-connection-device-id"] === deviceId);
    const [event, output] = mine;
    expect(event.body).toEqual({ t: 21 });
    expect(event.properties).toEqual({ alert: "hot" });
    expect([event.messageId, event.correlationId, event.contentType]).toEqual([`${name}-m1`, "c1", "application/json"]);
    expect(event.systemProperties).toMatchObject({
      "iothub-connection-auth-generation-id": hub.core.identities.find(deviceId)!.generationId,
      "iothub-message-source": "Telemetry",
      "iothub-enqueuedtime": event.enqueuedTimeUtc.getTime(),
      contentEncoding: "utf-8",
    });
    expect(JSON.parse(String(event.systemProperties!["iothub-connection-auth-method"]))).toMatchObject({
      scope: "device",
      type: "sas",
    });
    expect(output.systemProperties).toMatchObject({ "iothub-connection-module-id": "filter" });
    expect(output.properties).toEqual({ level: "2", "iothub-outputname": "alerts" });
  });

  it("a message over 256 KB is refused with MessageTooLargeError and the connection goes on", async () => {
    const device = await open(Client.fromConnectionString(moduleConnectionString(hub, deviceId), transport));
    const err = await device.sendEvent(new Message(Buffer.alloc(256 * 1024 + 1, 1))).catch((e: Error) => e);
    expect((err as Error).name).toBe("MessageTooLargeError");
    await device.sendEvent(new Message("small again"));
  });

  it("C2D complete, reject and abandon become Success, Rejected and a redelivery, as feedback says", async () => {
    const device = await open(Client.fromConnectionString(moduleConnectionString(hub, deviceId), transport));
    const received: Message[] = [];
    device.on("message", (m: Message) => {
      received.push(m);
      const body = m.data.toString();
      const settle =
        body === "complete" ||
        (body === "abandon" && received.filter((r) => r.data.toString() === "abandon").length > 1)
          ? device.complete(m)
          : body === "reject"
            ? device.reject(m)
            : device.abandon(m);
      void settle;
    });
    // Opens the C2D link (the SDK does so when a 'message' listener is added, once connected).
    await eventually(() => hub.core.identities.isConnected(hub.core.identities.find(deviceId)!), "connected");
    const ids = ["complete", "reject", "abandon"].map((body) => `${name}-${body}`);
    for (const body of ["complete", "reject", "abandon"]) {
      await service.send(
        deviceId,
        message(body, { messageId: `${name}-${body}`, ack: "full", correlationId: "k" }, { kind: body }),
      );
    }
    await eventually(() => ids.every((id) => feedback.some((f) => f.originalMessageId === id)), "3 feedback records");
    const status = Object.fromEntries(
      feedback.filter((f) => ids.includes(f.originalMessageId)).map((f) => [f.originalMessageId, f.statusCode]),
    );
    expect(status).toEqual({ [ids[0]]: "Success", [ids[1]]: "Rejected", [ids[2]]: "Success" });
    const abandoned = received.filter((m) => m.data.toString() === "abandon");
    expect(abandoned).toHaveLength(2);

    expect(abandoned.map((m) => m.transportObj.delivery_count ?? 0)).toEqual([0, 1]);
    const first = received[0];
    expect([first.messageId, first.correlationId, first.ack]).toEqual([ids[0], "k", "full"]);
    expect(first.properties.getValue("kind")).toBe("complete");
    expect(first.to).toBe(`/devices/${deviceId}/messages/deviceBound`);
  });

  it("a module's input messages link attaches (nothing routes to it: the hub has no message routing)", async () => {
    const amqp = new transport(
      SharedAccessKeyAuthenticationProvider.fromConnectionString(moduleConnectionString(hub, deviceId, "filter")),
    );
    closers.push(() => new Promise((resolve) => amqp.disconnect(resolve)));
    const call = (run: (done: (err?: Error) => void) => void) =>
      new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())));
    await call((done) => amqp.connect(done));
    await call((done) => amqp.enableInputMessages(done));
    // A refused link is attached first and detached with its error right after, which the SDK only logs: the
    // hub's log says whether it kept the link.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(hubLog.filter((line) => line.includes("refused link") && line.includes("filter"))).toEqual([]);
  });
});
