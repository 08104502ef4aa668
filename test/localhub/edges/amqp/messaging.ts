/**
 * The hub's messaging, composed in one call for hub.ts: the AMQP edge (port bound first, like the other edges), the
 * cloud-to-device queue (its own journal in DIR/c2d), the event log (DIR/events) and telemetry into it.
 */
import * as path from "node:path";
import type { WebSocket } from "ws";
import type { HubCore } from "../../core/hub-core";
import { CloudToDeviceQueue, CloudToDeviceRecord } from "../../core/cloud-to-device";
import { Telemetry } from "../../core/telemetry";
import { EventLog, EventLogOptions } from "../../store/event-log";
import { JournalStore } from "../../store/journal";
import { MemoryStore } from "../../store/memory";
import type { Store } from "../../store/store";
import { AmqpEdge } from "./server";
import { eventHubConnectionString } from "./redirect";

export interface Messaging {
  amqp: AmqpEdge;
  cloudToDevice: CloudToDeviceQueue;
  events: EventLog;
  telemetry: Telemetry;
  /** The Event Hubs-compatible connection string (iothubowner, or the named policy). */
  eventHubConnectionString(policyName?: string): string;
  /** For the HTTPS server's upgrade of `/$iothub/websocket` with subprotocol `AMQPWSB10`. */
  acceptWebSocket(ws: WebSocket, remote?: string): void;
  stop(): Promise<void>;
}

export interface MessagingOptions {
  core: HubCore;
  /** The hub's state directory: c2d/ and events/ go in it (unless inMemory). */
  dataDir: string;
  inMemory?: boolean;
  log?: (line: string) => void;
  /** An edge already listening (hub.ts binds every port before it opens any state); else one is made here. */
  amqp?: AmqpEdge;
  tls?: { key: string; cert: string };
  /** AMQPS port when the edge is made here; 5671 by default, 0 for any free port. */
  amqpPort?: number;
  /** Partitions (default 2), retention (default one day), size limit of the event log. */
  eventLog?: EventLogOptions;
}

export async function startMessaging(options: MessagingOptions): Promise<Messaging> {
  const { core } = options;
  const log = options.log ?? (() => {});
  let amqp = options.amqp;
  if (!amqp) {
    if (!options.tls) throw new Error("startMessaging needs tls (key, cert) or an AMQP edge already listening");
    amqp = new AmqpEdge(core.hostName, log);
    // Bind first: a second hub on the same directory fails here, before it touches the journals.
    await amqp.listen({ tls: options.tls, port: options.amqpPort });
  }
  let store: Store<CloudToDeviceRecord> | undefined;
  let events: EventLog | undefined;
  try {
    store = options.inMemory
      ? new MemoryStore<CloudToDeviceRecord>()
      : await JournalStore.open<CloudToDeviceRecord>(path.join(options.dataDir, "c2d"));
    events = EventLog.open(options.inMemory ? undefined : path.join(options.dataDir, "events"), options.eventLog);
  } catch (err) {
    await amqp.stop();
    await store?.close();
    throw err;
  }
  const cloudToDevice = new CloudToDeviceQueue(store, core.identities, log);
  // A deleted device's queue goes with it (feedback Purged where asked), as on IoT Hub: a device created again
  // under the same id must not get the old messages.
  core.events.on("revoked", ({ key }) => {
    if (!key.includes("/") && !core.identities.find(key)) void cloudToDevice.purge(key);
  });
  const telemetry = new Telemetry(events, core.identities);
  amqp.serve({ core, cloudToDevice, events, log });
  const edge = amqp;

  let stopped: Promise<void> | undefined;
  return {
    amqp,
    cloudToDevice,
    events,
    telemetry,
    eventHubConnectionString: (policyName = "iothubowner") => {
      const policy = core.policies.find(policyName);
      if (!policy) throw new Error(`no policy ${policyName}`);
      return eventHubConnectionString(edge.endpointHost, edge.entityName, policy);
    },
    acceptWebSocket: (ws, remote) => edge.acceptWebSocket(ws, remote),
    stop: () =>
      (stopped ??= (async () => {
        await edge.stop();
        cloudToDevice.close();
        await events.close();
        await store.close();
      })()),
  };
}
