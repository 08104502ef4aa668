/**
 * @summary The peers bench's reader as its own process: one consumer that must receive every message of the load.
 * `mqtt`: a QoS 1 subscriber with a persistent session (mqtt-packet over node:tls, PUBACK for each message), for the
 * brokers; `amqp`: a bare rhea receiver on every partition of the hub's Event Hubs-compatible endpoint; `sdk`:
 * EventHubConsumerClient reading every partition.
 *
 * IPC: { kind, total, host?, port?, eventHubConnectionString? }  ->  { ready }, then { delivered: t, count }
 */
import * as tls from "node:tls";
import * as mqttPacket from "mqtt-packet";
import { Connection } from "rhea";
import { EventHubConsumerClient } from "@azure/event-hubs";
import { openRawReader } from "./messaging-clients";
import { wallNow } from "./peer-children";

export interface ReaderPlan {
  kind: "mqtt" | "amqp" | "sdk";
  total: number;
  host?: string;
  port?: number;
  eventHubConnectionString?: string;
}

/** The MQTT topic filter the subscriber takes: every device's telemetry, as the load generator names it. */
export const TELEMETRY_FILTER = "devices/+/messages/events/#";
/** Messages a reader lets the broker send ahead of what it has taken: EventHubConsumerClient's credit with
 * maxBatchSize 1,000, and the brokers' in-flight window to the subscriber (peer-brokers.ts). */
export const READER_WINDOW = 1000;

let count = 0;
let total = Infinity;
const onMessages = (n: number) => {
  count += n;
  if (count >= total) {
    process.send!({ delivered: wallNow(), count });
    total = Infinity;
  }
};

async function subscribeMqtt(host: string, port: number): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host, port, servername: host });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const subscribed = new Promise<void>((resolve, reject) => {
    parser.on("packet", (packet: mqttPacket.Packet) => {
      if (packet.cmd === "connack" && packet.returnCode !== 0) reject(new Error(`CONNACK ${packet.returnCode}`));
      if (packet.cmd === "connack")
        socket.write(
          mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: TELEMETRY_FILTER, qos: 1 }] }),
        );
      if (packet.cmd === "suback") resolve();
    });
  });
  // Acknowledge what one chunk held in one write, as a client library would.
  let acks: Buffer[] = [];
  parser.on("packet", (packet: mqttPacket.Packet) => {
    if (packet.cmd !== "publish") return;
    if (packet.qos === 1) acks.push(mqttPacket.generate({ cmd: "puback", messageId: packet.messageId! }));
  });
  socket.on("data", (chunk: Buffer) => {
    parser.parse(chunk);
    if (!acks.length) return;
    const n = acks.length;
    socket.write(Buffer.concat(acks));
    acks = [];
    onMessages(n);
  });
  socket.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: false,
      keepalive: 180,
      clientId: "bench-reader",
      username: "bench-reader",
    }),
  );
  await subscribed;
  return socket;
}

/** Every partition's last sequence number now: the readers take what comes after it. */
async function partitionsNow(consumer: EventHubConsumerClient): Promise<Record<string, { sequenceNumber: number }>> {
  const start: Record<string, { sequenceNumber: number }> = {};
  for (const id of await consumer.getPartitionIds())
    start[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
  return start;
}

async function readRaw(eventHubConnectionString: string): Promise<Connection[]> {
  const consumer = new EventHubConsumerClient("$Default", eventHubConnectionString);
  const start = await partitionsNow(consumer);
  await consumer.close();
  return Promise.all(
    Object.entries(start).map(([id, { sequenceNumber }]) =>
      openRawReader(eventHubConnectionString, id, sequenceNumber, () => onMessages(1), READER_WINDOW),
    ),
  );
}

async function readWithSdk(eventHubConnectionString: string): Promise<void> {
  const consumer = new EventHubConsumerClient("$Default", eventHubConnectionString);
  const start = await partitionsNow(consumer);
  let initialized = 0;
  await new Promise<void>((resolve) => {
    consumer.subscribe(
      {
        processInitialize: () => {
          if (++initialized === Object.keys(start).length) resolve();
          return Promise.resolve();
        },
        processEvents: (events) => {
          if (events.length) onMessages(events.length);
          return Promise.resolve();
        },
        processError: (err) => Promise.resolve(console.error(`sdk reader: ${err.message}`)),
      },
      { startPosition: start, maxBatchSize: 1000, maxWaitTimeInSeconds: 0.01 },
    );
  });
}

process.once("message", (plan: ReaderPlan) => {
  const ready =
    plan.kind === "mqtt"
      ? subscribeMqtt(plan.host!, plan.port!)
      : plan.kind === "amqp"
        ? readRaw(plan.eventHubConnectionString!)
        : readWithSdk(plan.eventHubConnectionString!);
  ready.then(
    () => {
      total = plan.total;
      process.send!({ ready: true });
    },
    (err: Error) => {
      console.error(`reader (${plan.kind}): ${err.message}`);
      process.exit(1);
    },
  );
});
process.on("disconnect", () => process.exit(0));
