import {
  EventHubConsumerClient,
  EventPosition,
  ReceivedEventData,
  earliestEventPosition,
  latestEventPosition,
} from "@azure/event-hubs";
import { Client as DeviceClient, Message, ModuleClient } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import { eventually, moduleConnectionString } from "../helpers/hub";
import type { LoggedEvent } from "../localhub";
import { MessagingHub, startMessagingHub } from "./messaging-hub";
import { readRedirect } from "./redirect-client";

let running: MessagingHub | undefined;
/** The hub's log lines: a test can wait for a reader to be attached. */
let hubLog: string[] = [];
const clients: EventHubConsumerClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await running?.stop();
  running = undefined;
});

async function hubWithDevice(dataDir?: string): Promise<MessagingHub> {
  hubLog = [];
  running = await startMessagingHub(dataDir, { log: (line) => hubLog.push(line) });
  const { identities } = running.hub.core;
  if (!identities.find("dev1")) {
    await identities.putDevice("dev1", { deviceId: "dev1" }, undefined);
    await identities.putModule("dev1", "filter", { deviceId: "dev1", moduleId: "filter" }, undefined);
  }
  return running;
}

/** What the MQTT edge hands over for `devices/dev1[/modules/m]/messages/events/{propertyBag}`. */
function send(hub: MessagingHub, body: string | Buffer, propertyBag = "", moduleId?: string) {
  return hub.hub.core.telemetry.receive({ deviceId: "dev1", moduleId, body: Buffer.from(body), propertyBag });
}

function consumer(hub: MessagingHub, group = "$Default", connectionString?: string): EventHubConsumerClient {
  const client = new EventHubConsumerClient(group, connectionString ?? hub.hub.eventHubConnectionString());
  clients.push(client);
  return client;
}

/** The body as text: the consumer parses JSON bodies and hands others over as bytes. */
const text = (event: ReceivedEventData): string =>
  Buffer.isBuffer(event.body) ? event.body.toString() : JSON.stringify(event.body);

/** Reads the dev1 partition from `position` until `count` events have arrived. */
async function read(client: EventHubConsumerClient, partitionId: string, position: EventPosition, count: number) {
  const events: ReceivedEventData[] = [];
  let failure: Error | undefined;
  const subscription = client.subscribe(
    partitionId,
    {
      processEvents: (batch) => Promise.resolve(void events.push(...batch)),
      processError: (err) => Promise.resolve(void (failure = err)),
    },
    { startPosition: position, maxWaitTimeInSeconds: 1 },
  );
  try {
    await eventually(() => events.length >= count || failure !== undefined, `${count} events`);
  } finally {
    await subscription.close();
  }
  if (failure) throw failure;
  return events;
}

describe("telemetry read back through the Event Hubs-compatible endpoint", () => {
  it("gives each event its body, application properties and the system properties IoT Hub stamps", async () => {
    const hub = await hubWithDevice();
    const stored = await send(
      hub,
      '{"t":21}',
      "%24.mid=m1&%24.cid=c1&%24.ct=application%2Fjson&%24.ce=utf-8&alert=hot",
    );
    await send(hub, "filtered", "%24.on=alerts&level=2", "filter");
    const [event, output] = await read(consumer(hub), String(stored.partition), earliestEventPosition, 2);
    expect(event.body).toEqual({ t: 21 });
    expect(event.properties).toEqual({ alert: "hot" });
    expect([event.messageId, event.correlationId, event.contentType]).toEqual(["m1", "c1", "application/json"]);
    expect([event.sequenceNumber, event.offset]).toEqual([0, "0"]);
    expect(event.systemProperties).toMatchObject({
      "iothub-connection-device-id": "dev1",
      "iothub-connection-auth-generation-id": hub.hub.core.identities.find("dev1")!.generationId,
      "iothub-message-source": "Telemetry",
      "iothub-enqueuedtime": event.enqueuedTimeUtc.getTime(),
    });
    expect(JSON.parse(String(event.systemProperties!["iothub-connection-auth-method"]))).toMatchObject({
      scope: "device",
      type: "sas",
    });
    expect(output.systemProperties).toMatchObject({ "iothub-connection-module-id": "filter" });
    expect(output.properties).toEqual({ level: "2", "iothub-outputname": "alerts" });
    expect(text(output)).toBe("filtered");
  });

  it("starts reading where asked: earliest, latest, sequence number, offset or enqueued time", async () => {
    const hub = await hubWithDevice();
    const stored: LoggedEvent[] = [];
    for (let i = 0; i < 4; i++) {
      stored.push(await send(hub, JSON.stringify(i)));
      // Distinct enqueued times (milliseconds), so that a time filter falls between two events.
      await eventually(() => Date.now() > stored[i].enqueuedTimeMs, "the next millisecond");
    }
    const partition = String(stored[0].partition);
    const bodies = async (position: EventPosition, count: number) =>
      (await read(consumer(hub), partition, position, count)).map((e) => e.body);
    expect(await bodies(earliestEventPosition, 4)).toEqual([0, 1, 2, 3]);
    expect(await bodies({ sequenceNumber: 1 }, 2)).toEqual([2, 3]);
    expect(await bodies({ sequenceNumber: 1, isInclusive: true }, 3)).toEqual([1, 2, 3]);
    expect(await bodies({ offset: String(stored[2].offset) }, 1)).toEqual([3]);
    expect(await bodies({ enqueuedOn: new Date(stored[1].enqueuedTimeMs) }, 2)).toEqual([2, 3]);

    // Latest: only what arrives after the reader attached.
    const client = consumer(hub);
    const readers = hubLog.filter((line) => line.includes("AMQP EVENTS")).length;
    const reading = read(client, partition, latestEventPosition, 1);
    await eventually(() => hubLog.filter((line) => line.includes("AMQP EVENTS")).length > readers, "the reader");
    await send(hub, "4");
    expect((await reading).map((e) => e.body)).toEqual([4]);
  });

  it("serves $Default and any named consumer group, each reading the whole stream", async () => {
    const hub = await hubWithDevice();
    const stored = await send(hub, "shared");
    for (const group of ["$Default", "analytics"]) {
      const events = await read(consumer(hub, group), String(stored.partition), earliestEventPosition, 1);
      expect(events.map(text)).toEqual(["shared"]);
    }
  });

  it("answers the hub and partition properties the consumer asks for", async () => {
    const hub = await hubWithDevice();
    const stored = await send(hub, "x");
    const client = consumer(hub);
    const properties = await client.getEventHubProperties();
    expect(properties).toMatchObject({ name: hub.hub.amqp.entityName, partitionIds: ["0", "1"] });
    const partition = await client.getPartitionProperties(String(stored.partition));
    expect(partition).toMatchObject({
      partitionId: String(stored.partition),
      beginningSequenceNumber: 0,
      lastEnqueuedSequenceNumber: 0,
      lastEnqueuedOffset: "0",
      isEmpty: false,
    });
    const other = await client.getPartitionProperties(String(1 - stored.partition));
    expect(other).toMatchObject({ isEmpty: true, lastEnqueuedSequenceNumber: -1 });
  });

  it("keeps every acknowledged event across a hub restart and numbers new ones on", async () => {
    const first = await hubWithDevice();
    const dataDir = first.dataDir;
    await send(first, "before");
    await first.stop();
    running = undefined;
    const second = await hubWithDevice(dataDir);
    const stored = await send(second, "after");
    expect(stored.sequenceNumber).toBe(1);
    const events = await read(consumer(second), String(stored.partition), earliestEventPosition, 2);
    expect(events.map((e) => [text(e), e.sequenceNumber])).toEqual([
      ["before", 0],
      ["after", 1],
    ]);
  });

  it("carries an empty message and a 256 KB message", async () => {
    const hub = await hubWithDevice();
    const big = Buffer.alloc(256 * 1024 - 100, 7);
    const stored = await send(hub, Buffer.alloc(0));
    await send(hub, big);
    const events = await read(consumer(hub), String(stored.partition), earliestEventPosition, 2);
    expect(Buffer.from(events[0].body ?? []).length).toBe(0);
    expect(Buffer.compare(Buffer.from(events[1].body as Buffer), big)).toBe(0);
    await expect(send(hub, Buffer.alloc(256 * 1024 + 1))).rejects.toThrow(/at most 256 KB/);
  });

  it("reads with the IoT Hub connection string through the amqp:link:redirect route", async () => {
    const hub = await hubWithDevice();
    const stored = await send(hub, "via redirect");
    const connectionString = await readRedirect(hub.hub.connectionString, hub.hub.amqp.port);
    expect(connectionString).toContain(`EntityPath=${hub.hub.amqp.entityName}`);
    const events = await read(
      consumer(hub, "$Default", connectionString),
      String(stored.partition),
      earliestEventPosition,
      1,
    );
    expect(events.map(text)).toEqual(["via redirect"]);
  });

  it.each([
    ["MQTT", Mqtt],
    ["MQTT over WebSockets", MqttWs],
  ])(
    "reads back what a device and a module output sent over %s, acknowledged only once stored",
    async (_name, transport) => {
      const hub = await hubWithDevice();
      const device = DeviceClient.fromConnectionString(moduleConnectionString(hub.hub, "dev1"), transport);
      const module = ModuleClient.fromConnectionString(moduleConnectionString(hub.hub, "dev1", "filter"), transport);
      try {
        const reading = new Message('{"temperature":21.5}');
        reading.messageId = "r1";
        reading.contentType = "application/json";
        reading.contentEncoding = "utf-8";
        reading.properties.add("alert", "no");
        await device.sendEvent(reading);
        // Acknowledged means durable: the event is in the log before sendEvent resolves.
        const { telemetry } = hub.hub.core;
        const partition = [0, 1].find((id) => !telemetry.partitionInfo(id)!.isEmpty)!;
        expect(telemetry.partitionInfo(partition)!.lastSequenceNumber).toBe(0);
        await module.sendOutputEvent("alerts", new Message("hot"));
        const [event, output] = await read(consumer(hub), String(partition), earliestEventPosition, 2);
        expect(event.body).toEqual({ temperature: 21.5 });
        expect(event.messageId).toBe("r1");
        expect(event.properties).toEqual({ alert: "no" });
        expect(event.systemProperties).toMatchObject({ "iothub-connection-device-id": "dev1" });
        expect(text(output)).toBe("hot");
        expect(output.properties).toMatchObject({ "iothub-outputname": "alerts" });
        expect(output.systemProperties).toMatchObject({
          "iothub-connection-device-id": "dev1",
          "iothub-connection-module-id": "filter",
        });
      } finally {
        await device.close();
        await module.close();
      }
    },
  );
});
