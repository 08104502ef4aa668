/**
 * Opens the stores behind the hub's core, as startHub() asks: the state journal (identities, twins), the
 * cloud-to-device journal and the telemetry log under the data directory, or in memory. Only hub.ts calls it.
 */
import * as path from "node:path";
import type { CloudToDeviceRecord } from "./core/cloud-to-device";
import type { HubStores } from "./core/hub-core";
import type { StoredRecord } from "./core/records";
import { EventLog, EventLogOptions } from "./store/event-log";
import { JournalStore } from "./store/journal";
import { MemoryStore } from "./store/memory";
import type { Store } from "./store/store";

export interface StoreOptions {
  dataDir: string;
  /** Identities, twins and messages in memory only; the telemetry log in a temporary directory. */
  inMemory?: boolean;
  /** A state store of the caller's (tests that hold back or fail writes); messaging then stays in memory. */
  state?: Store<StoredRecord>;
  eventLog?: EventLogOptions;
  log: (line: string) => void;
}

/** Opens all three, or none: what opened before a failure is closed again. */
export async function openStores(options: StoreOptions): Promise<HubStores> {
  const { dataDir, log } = options;
  const messagingInMemory = options.inMemory || options.state !== undefined;
  const opened: { close(): Promise<void> }[] = [];
  try {
    const state =
      options.state ??
      (options.inMemory
        ? new MemoryStore<StoredRecord>()
        : await JournalStore.open<StoredRecord>(path.join(dataDir, "state"), { log }));
    opened.push(state);
    const cloudToDevice = messagingInMemory
      ? new MemoryStore<CloudToDeviceRecord>()
      : await JournalStore.open<CloudToDeviceRecord>(path.join(dataDir, "c2d"));
    opened.push(cloudToDevice);
    const events = EventLog.open(messagingInMemory ? undefined : path.join(dataDir, "events"), options.eventLog);
    return { state, cloudToDevice, events };
  } catch (err) {
    await Promise.all(opened.map((store) => store.close()));
    throw err;
  }
}

/** Stores in memory (unit tests of the core): close them with the core. */
export function memoryStores(): HubStores {
  return {
    state: new MemoryStore<StoredRecord>(),
    cloudToDevice: new MemoryStore<CloudToDeviceRecord>(),
    events: EventLog.open(undefined),
  };
}
