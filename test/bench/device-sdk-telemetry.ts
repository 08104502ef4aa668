/**
 * @summary Telemetry as an application sends it: azure-iot-device `Client.sendEvent` over a given transport (Mqtt or
 * Amqp), several devices at once, until an EventHubConsumerClient has read every message back. The same load over
 * each transport, so that the rows compare the transports and not the load generators.
 */
import { performance } from "node:perf_hooks";
import { Registry } from "azure-iothub";
import { Client, Message } from "azure-iot-device";
import { EventHubConsumerClient } from "@azure/event-hubs";
import { sleep } from "./measure";

/** Messages each device keeps in flight (sent, not yet acknowledged by the hub). */
const IN_FLIGHT = 50;
const READ_BACK_TIMEOUT_MS = 60_000;

export interface SdkTelemetryOptions {
  iotHubConnectionString: string;
  eventHubConnectionString: string;
  transport: unknown;
  /** Device ids are `{prefix}-{n}`: each transport its own devices. */
  prefix: string;
  devices: number;
  perDevice: number;
}

export interface SdkTelemetryFigures {
  /** Messages/s from the first send until the last acknowledgement (the hub made them durable). */
  acknowledgedPerSec: number;
  /** Messages/s from the first send until the consumer has read the last one back. */
  readBackPerSec: number;
}

async function openDevices(options: SdkTelemetryOptions): Promise<{ id: string; client: Client }[]> {
  const registry = Registry.fromConnectionString(options.iotHubConnectionString);
  const host = /HostName=([^;]+)/.exec(options.iotHubConnectionString)![1];
  const opened: { id: string; client: Client }[] = [];
  for (let n = 0; n < options.devices; n++) {
    const id = `${options.prefix}-${n}`;
    const device = await registry.create({ deviceId: id }).then(
      (r) => r.responseBody,
      async () => (await registry.get(id)).responseBody,
    );
    const key = device.authentication!.symmetricKey!.primaryKey;
    const client = Client.fromConnectionString(
      `HostName=${host};DeviceId=${id};SharedAccessKey=${key}`,
      options.transport,
    );
    await client.open();
    opened.push({ id, client });
  }
  return opened;
}

/** Sends `count` messages from one client with at most IN_FLIGHT unacknowledged. */
async function sendAll(client: Client, tag: string, count: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const message = new Message(JSON.stringify({ n: next++ }));
      message.properties.add("run", tag);
      await client.sendEvent(message);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, lane));
}

export async function sdkTelemetryThroughput(options: SdkTelemetryOptions): Promise<SdkTelemetryFigures> {
  const devices = await openDevices(options);
  const consumer = new EventHubConsumerClient("$Default", options.eventHubConnectionString);
  try {
    // From what is there now on: events of earlier parts do not count.
    const start: Record<string, { sequenceNumber: number }> = {};
    for (const id of await consumer.getPartitionIds()) {
      start[id] = { sequenceNumber: (await consumer.getPartitionProperties(id)).lastEnqueuedSequenceNumber };
    }
    const tag = `${options.prefix}-${Date.now()}`;
    const total = options.devices * options.perDevice;
    let received = 0;
    let allRead: () => void = () => {};
    const readBack = new Promise<void>((resolve) => (allRead = resolve));
    const subscription = consumer.subscribe(
      {
        processEvents: (events) => {
          received += events.filter((event) => event.properties?.run === tag).length;
          if (received >= total) allRead();
          return Promise.resolve();
        },
        processError: () => Promise.resolve(),
      },
      { startPosition: start, maxBatchSize: 1000, maxWaitTimeInSeconds: 0.01 },
    );
    const started = performance.now();
    await Promise.all(devices.map(({ client }) => sendAll(client, tag, options.perDevice)));
    const acknowledgedMs = performance.now() - started;
    await Promise.race([
      readBack,
      sleep(READ_BACK_TIMEOUT_MS).then(() => Promise.reject(new Error(`read back ${received} of ${total} messages`))),
    ]);
    const readBackMs = performance.now() - started;
    await subscription.close();
    return {
      acknowledgedPerSec: Math.round(total / (acknowledgedMs / 1000)),
      readBackPerSec: Math.round(total / (readBackMs / 1000)),
    };
  } finally {
    // The SDK's close can hang: do not let it stall the benchmark.
    await Promise.race([Promise.all(devices.map(({ client }) => client.close())), sleep(3000)]);
    await consumer.close();
  }
}
