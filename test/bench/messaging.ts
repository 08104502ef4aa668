/**
 * Messaging figures for `npm run bench`: telemetry throughput (messages/s from N devices until a consumer has read
 * them all back), end-to-end telemetry latency (device send -> consumer receive) and C2D latency (service send ->
 * device receive). Runs against a hub that is already up (bench.ts starts it as its own process).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import * as tls from "node:tls";
import * as mqtt from "mqtt";
import * as mqttPacket from "mqtt-packet";
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Message } from "azure-iot-device";
import { EventHubConsumerClient, ReceivedEventData } from "@azure/event-hubs";
import { createHmac } from "node:crypto";
import { Connection, EventContext, Message as AmqpMessage, create_container, types } from "rhea";
import { createSasToken } from "../localhub/core/sas";

export interface MessagingBenchOptions {
  iotHubConnectionString: string;
  eventHubConnectionString: string;
  /** Telemetry senders (default 10), each sending `messagesPerDevice` (default 2,000) at QoS 1. */
  devices?: number;
  messagesPerDevice?: number;
  /** Messages timed one at a time for the latencies (default 500 each). */
  latencySamples?: number;
  mqttPort?: number;
  /** When not 5671, the service SDK (which always dials 5671) is pointed here through port-redirect.cjs. */
  amqpPort?: number;
  log?: (line: string) => void;
}

export interface MessagingFigures {
  telemetry: {
    msgsPerSec: number;
    /** Device PUBLISH to the event's arrival on a reader's AMQP link. */
    e2eLatencyMs: { p50: number; p99: number };
    /** The same to EventHubConsumerClient's processEvents (adds the SDK's 20 ms read interval). */
    sdkE2eLatencyMs: { p50: number; p99: number };
  };
  c2dLatencyMs: { p50: number; p99: number };
}

/** Messages each device keeps in flight (published, not yet acknowledged). */
const WINDOW = 200;

const now = () => performance.timeOrigin + performance.now();
const round = (n: number) => Math.round(n * 100) / 100;

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: round(at(50)), p99: round(at(99)) };
}

function field(connectionString: string, name: string): string {
  return new RegExp(`(?:^|;)${name}=([^;]*)`).exec(connectionString)?.[1] ?? "";
}

async function connectDevice(host: string, port: number, deviceId: string, key: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(`mqtts://${host}:${port}`, {
    clientId: deviceId,
    username: `${host}/${deviceId}/?api-version=2021-04-12`,
    password: createSasToken(`${host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600),
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
}

/**
 * A bare MQTT sender (mqtt-packet over TLS, as the SDK would connect): an mqtt.js client costs the load generator
 * more CPU per message than the hub spends on it, and this machine has two cores.
 */
async function connectSender(host: string, port: number, deviceId: string, key: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host, port, servername: host });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  socket.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: false,
      keepalive: 180,
      clientId: deviceId,
      username: `${host}/${deviceId}/?api-version=2021-04-12`,
      password: Buffer.from(createSasToken(`${host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600)),
    }),
  );
  const connack: Buffer = await new Promise((resolve) => socket.once("data", resolve));
  if (connack[3] !== 0) throw new Error(`${deviceId}: CONNACK ${connack[3]}`);
  return socket;
}

/**
 * Publishes `count` copies of one QoS 1 message with at most WINDOW unacknowledged. The hub sends this client
 * nothing but 4-byte PUBACKs, so counting bytes counts acknowledgements.
 */
function blast(socket: tls.TLSSocket, topic: string, count: number): Promise<void> {
  const template = mqttPacket.generate({
    cmd: "publish",
    topic,
    payload: Buffer.from('{"t":0}'),
    qos: 1,
    messageId: 1,
    retain: false,
    dup: false,
  });
  const idAt = template.length - 7 - 2;
  let sent = 0;
  let acknowledged = 0;
  const sendUpTo = (limit: number) => {
    const batch: Buffer[] = [];
    while (sent < limit) {
      const packet = Buffer.from(template);
      packet.writeUInt16BE((sent % 65_535) + 1, idAt);
      batch.push(packet);
      sent++;
    }
    if (batch.length) socket.write(Buffer.concat(batch));
  };
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      acknowledged += chunk.length / 4;
      if (acknowledged >= count) return resolve();
      if (sent - acknowledged <= WINDOW / 2) sendUpTo(Math.min(count, acknowledged + WINDOW));
    });
    sendUpTo(Math.min(count, WINDOW));
  });
}

/**
 * A bare Event Hubs partition reader (rhea, CBS put-token, selector filter), for the end-to-end latency of the hub
 * itself: EventHubConsumerClient waits 20 ms after the first event of a batch (its read interval) before it calls
 * processEvents, which would hide what the hub does.
 */
async function openRawReader(
  eventHubConnectionString: string,
  partitionId: string,
  afterSequenceNumber: number,
  onMessage: (message: AmqpMessage) => void,
): Promise<Connection> {
  const endpoint = new URL(field(eventHubConnectionString, "Endpoint"));
  const keyName = field(eventHubConnectionString, "SharedAccessKeyName");
  const key = field(eventHubConnectionString, "SharedAccessKey");
  const entity = field(eventHubConnectionString, "EntityPath");
  const address = `${entity}/ConsumerGroups/$Default/Partitions/${partitionId}`;
  const audience = encodeURIComponent(`sb://${endpoint.host}/${address}`);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const signature = createHmac("sha256", key).update(`${audience}\n${expiry}`).digest("base64");
  const token = `SharedAccessSignature sr=${audience}&sig=${encodeURIComponent(signature)}&se=${expiry}&skn=${keyName}`;
  const connection = create_container().connect({
    transport: "tls",
    host: endpoint.hostname,
    port: Number(endpoint.port || 5671),
    servername: endpoint.hostname,
    reconnect: false,
  } as never);
  const replies = connection.open_receiver({ source: { address: "$cbs" }, target: { address: "cbs-bench" } });
  const requests = connection.open_sender({ target: { address: "$cbs" } });
  await new Promise<void>((resolve, reject) => {
    replies.on("message", (context: EventContext) =>
      context.message?.application_properties?.["status-code"] === 200 ? resolve() : reject(new Error("put-token")),
    );
    requests.once("sendable", () =>
      requests.send({
        message_id: "put-token",
        reply_to: "cbs-bench",
        application_properties: {
          operation: "put-token",
          type: "servicebus.windows.net:sastoken",
          name: decodeURIComponent(audience),
        },
        body: token,
      }),
    );
  });
  const reader = connection.open_receiver({
    source: {
      address,
      filter: {
        "apache.org:selector-filter:string": types.wrap_described(
          `amqp.annotation.x-opt-sequence-number > '${afterSequenceNumber}'`,
          0x137000000000000a,
        ),
      },
    },
    credit_window: 100,
  });
  reader.on("message", (context: EventContext) => onMessage(context.message!));
  await new Promise((resolve) => reader.once("receiver_open", resolve));
  return connection;
}

export async function measureMessaging(options: MessagingBenchOptions): Promise<MessagingFigures> {
  const log = options.log ?? (() => {});
  const devices = options.devices ?? 10;
  const perDevice = options.messagesPerDevice ?? 2000;
  const samples = options.latencySamples ?? 500;
  const host = field(options.iotHubConnectionString, "HostName");
  const mqttPort = options.mqttPort ?? 8883;
  if (options.amqpPort !== undefined && options.amqpPort !== 5671) {
    const redirect = path.join(__dirname, "../localhub/port-redirect.cjs");
    if (!fs.existsSync(redirect)) throw new Error("the service SDK only dials 5671: port-redirect.cjs is needed");
    (require(redirect) as { setPortMap(map: Record<number, number>): void }).setPortMap({ 5671: options.amqpPort });
  }

  const registry = Registry.fromConnectionString(options.iotHubConnectionString);
  const ids = Array.from({ length: devices + 1 }, (_, i) => `bench-msg-${i}`);
  const keys = new Map<string, string>();
  for (const deviceId of ids) {
    const device = await registry.create({ deviceId }).then(
      (r) => r.responseBody,
      async () => (await registry.get(deviceId)).responseBody,
    );
    keys.set(deviceId, device.authentication!.symmetricKey!.primaryKey!);
  }
  const clients = [await connectDevice(host, mqttPort, ids[0], keys.get(ids[0])!)];
  const senders = await Promise.all(ids.slice(1).map((id) => connectSender(host, mqttPort, id, keys.get(id)!)));
  const consumer = new EventHubConsumerClient("$Default", options.eventHubConnectionString);
  const service = ServiceClient.fromConnectionString(options.iotHubConnectionString);
  try {
    // Read from what is there now on: events of earlier runs do not count.
    const partitionIds = await consumer.getPartitionIds();
    const start: Record<string, { sequenceNumber: number }> = {};
    for (const id of partitionIds) {
      start[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
    }
    const tag = String(Date.now());
    let received = 0;
    let onEvent: (event: ReceivedEventData) => void = () => {};
    const subscription = consumer.subscribe(
      {
        processEvents: async (events) => {
          for (const event of events) {
            if (event.properties?.run !== tag) continue;
            received++;
            onEvent(event);
          }
        },
        processError: async (err) => log(`consumer error: ${err.message}`),
      },
      { startPosition: start, maxBatchSize: 1000, maxWaitTimeInSeconds: 0.01 },
    );

    // Throughput: every device sends its share, as fast as acknowledgements allow, until all are read back.
    const total = devices * perDevice;
    const allRead = new Promise<void>((resolve) => (onEvent = () => received >= total && resolve()));
    const started = now();
    await Promise.all(
      senders.map((socket, i) => blast(socket, `devices/${ids[i + 1]}/messages/events/run=${tag}`, perDevice)),
    );
    await allRead;
    const msgsPerSec = Math.round(total / ((now() - started) / 1000));
    log(`telemetry: ${total} messages from ${devices} devices read back at ${msgsPerSec}/s`);

    await subscription.close();

    // End-to-end latency: one message at a time, from just before the device's PUBLISH to its arrival at a reader
    // of the partition; once at the AMQP link (what the hub does), once in EventHubConsumerClient's processEvents.
    const position: Record<string, { sequenceNumber: number }> = {};
    for (const id of partitionIds) {
      position[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
    }
    const publishTimed = () =>
      clients[0].publishAsync(`devices/${ids[0]}/messages/events/run=${tag}`, JSON.stringify({ t: now() }), {
        qos: 1,
      });
    const sentAt = (body: unknown) => JSON.parse(Buffer.from((body as { content: Buffer }).content).toString()).t;
    let arrivedRaw: (at: number) => void = () => {};
    const readers = await Promise.all(
      partitionIds.map((id) =>
        openRawReader(options.eventHubConnectionString, id, position[id].sequenceNumber, (message) =>
          arrivedRaw(now() - sentAt(message.body)),
        ),
      ),
    );
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const arrived = new Promise<number>((resolve) => (arrivedRaw = resolve));
      await publishTimed();
      latencies.push(await arrived);
    }
    for (const reader of readers) reader.close();

    for (const id of partitionIds) {
      position[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
    }
    const sdkLatencies: number[] = [];
    let arrivedAt: (event: ReceivedEventData) => void = () => {};
    const single = consumer.subscribe(
      {
        processEvents: async (events) => events.forEach((event) => arrivedAt(event)),
        processError: async (err) => log(`consumer error: ${err.message}`),
      },
      { startPosition: position, maxBatchSize: 1, maxWaitTimeInSeconds: 1 },
    );
    for (let i = 0; i < Math.min(samples, 100); i++) {
      const arrived = new Promise<number>(
        (resolve) => (arrivedAt = (event) => resolve(now() - (event.body as { t: number }).t)),
      );
      await publishTimed();
      sdkLatencies.push(await arrived);
    }
    await single.close();

    // C2D latency: Client.send to the device's PUBLISH, one at a time.
    const device = clients[0];
    await device.subscribeAsync(`devices/${ids[0]}/messages/devicebound/#`, { qos: 1 });
    let delivered: (at: number) => void = () => {};
    device.on("message", () => delivered(now()));
    await service.open();
    const c2d: number[] = [];
    for (let i = 0; i < samples; i++) {
      const arrived = new Promise<number>((resolve) => (delivered = resolve));
      const sent = now();
      await service.send(ids[0], new Message(String(i)));
      c2d.push((await arrived) - sent);
    }
    return {
      telemetry: { msgsPerSec, e2eLatencyMs: percentiles(latencies), sdkE2eLatencyMs: percentiles(sdkLatencies) },
      c2dLatencyMs: percentiles(c2d),
    };
  } finally {
    await Promise.all(clients.map((client) => client.endAsync()));
    for (const socket of senders) socket.destroy();
    await consumer.close();
    await service.close();
  }
}
