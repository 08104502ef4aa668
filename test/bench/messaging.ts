/**
 * Messaging figures for `npm run bench`: telemetry throughput (messages/s from N devices until a consumer has read
 * them all back), end-to-end telemetry latency (device send -> consumer receive) and C2D latency (service send ->
 * device receive). Runs against a hub that is already up (bench.ts starts it as its own process).
 */
import { performance } from "node:perf_hooks";
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Message } from "azure-iot-device";
import { EventHubConsumerClient, ReceivedEventData } from "@azure/event-hubs";
import { setPortMap } from "../localhub";
import { blast, connectDevice, connectSender, field, openRawReader } from "./messaging-clients";

export interface MessagingBenchOptions {
  iotHubConnectionString: string;
  eventHubConnectionString: string;
  /** Telemetry senders (default 10), each sending `messagesPerDevice` (default 2,000) at QoS 1. */
  devices?: number;
  messagesPerDevice?: number;
  /** Messages timed one at a time for the latencies (default 500 each). */
  latencySamples?: number;
  mqttPort?: number;
  /** When not 5671, the service SDK (which always dials 5671) is pointed here through port-redirect.cjs (which
   * replaces this process's whole port map). */
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

const now = () => performance.timeOrigin + performance.now();
const round = (n: number) => Math.round(n * 100) / 100;

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: round(at(50)), p99: round(at(99)) };
}

export async function measureMessaging(options: MessagingBenchOptions): Promise<MessagingFigures> {
  const log = options.log ?? (() => {});
  const devices = options.devices ?? 10;
  const perDevice = options.messagesPerDevice ?? 2000;
  const samples = options.latencySamples ?? 500;
  const host = field(options.iotHubConnectionString, "HostName");
  const mqttPort = options.mqttPort ?? 8883;
  if (options.amqpPort !== undefined && options.amqpPort !== 5671) setPortMap({ 5671: options.amqpPort });

  const registry = Registry.fromConnectionString(options.iotHubConnectionString);
  const ids = Array.from({ length: devices + 1 }, (_, i) => `bench-msg-${i}`);
  const keys = new Map<string, string>();
  for (const deviceId of ids) {
    const device = await registry.create({ deviceId }).then(
      (r) => r.responseBody,
      async () => (await registry.get(deviceId)).responseBody,
    );
    keys.set(deviceId, device.authentication!.symmetricKey!.primaryKey);
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
        processEvents: (events) => {
          for (const event of events) {
            if (event.properties?.run !== tag) continue;
            received++;
            onEvent(event);
          }
          return Promise.resolve();
        },
        processError: (err) => Promise.resolve(log(`consumer error: ${err.message}`)),
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
    const sentAt = (body: unknown) =>
      (JSON.parse(Buffer.from((body as { content: Buffer }).content).toString()) as { t: number }).t;
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
        processEvents: (events) => Promise.resolve(events.forEach((event) => arrivedAt(event))),
        processError: (err) => Promise.resolve(log(`consumer error: ${err.message}`)),
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
