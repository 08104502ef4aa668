/**
 * Runs the AMQP edge next to a hub started by startHub(), sharing its core and certificates, until hub.ts
 * starts the edge itself. Tests and the benchmark use it; it owns the C2D queue, the event log and telemetry.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Hub } from "../../hub";
import { CloudToDeviceQueue, CloudToDeviceRecord } from "../../core/cloud-to-device";
import { Telemetry } from "../../core/telemetry";
import { EventLog, EventLogOptions } from "../../store/event-log";
import { JournalStore, MemoryStore, Store } from "../../store/journal";
import { AmqpEdge, startAmqpEdge } from "./server";
import { eventHubConnectionString } from "./redirect";

export interface Messaging {
  amqp: AmqpEdge;
  cloudToDevice: CloudToDeviceQueue;
  events: EventLog;
  telemetry: Telemetry;
  /** The Event Hubs-compatible connection string (iothubowner, or the named policy). */
  eventHubConnectionString(policyName?: string): string;
  stop(): Promise<void>;
}

export interface MessagingOptions {
  /** AMQPS port; 5671 by default, 0 for any free port. */
  amqpPort?: number;
  inMemory?: boolean;
  log?: (line: string) => void;
  eventLog?: EventLogOptions;
}

/** Opens the messaging state in `hub.dataDir` (c2d/, events/) and starts the AMQP edge on the hub's core. */
export async function startMessaging(hub: Hub, options: MessagingOptions = {}): Promise<Messaging> {
  const log = options.log ?? (() => {});
  const store: Store<CloudToDeviceRecord> = options.inMemory
    ? new MemoryStore<CloudToDeviceRecord>()
    : await JournalStore.open<CloudToDeviceRecord>(path.join(hub.dataDir, "c2d"));
  const cloudToDevice = new CloudToDeviceQueue(store, hub.core.identities, log);
  const events = EventLog.open(options.inMemory ? undefined : path.join(hub.dataDir, "events"), options.eventLog);
  const telemetry = new Telemetry(events, hub.core.identities);
  const tlsOptions = {
    key: fs.readFileSync(path.join(hub.dataDir, "server-key.pem"), "utf8"),
    cert: fs.readFileSync(path.join(hub.dataDir, "server.pem"), "utf8"),
  };
  let amqp: AmqpEdge;
  try {
    amqp = await startAmqpEdge(
      { core: hub.core, cloudToDevice, events, log },
      { tls: tlsOptions, port: options.amqpPort },
    );
  } catch (err) {
    cloudToDevice.close();
    await events.close();
    await store.close();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    amqp,
    cloudToDevice,
    events,
    telemetry,
    eventHubConnectionString: (policyName = "iothubowner") => {
      const policy = hub.core.policies.find(policyName);
      if (!policy) throw new Error(`no policy ${policyName}`);
      return eventHubConnectionString(amqp.endpointHost, amqp.entityName, policy);
    },
    stop: () =>
      (stopped ??= (async () => {
        await amqp.stop();
        cloudToDevice.close();
        await events.close();
        await store.close();
      })()),
  };
}
