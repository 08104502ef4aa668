/**
 * The storage behind the Event Hubs-compatible endpoint: device-to-cloud events in partitions, each an append-only
 * log with sequence numbers and byte offsets as Event Hubs gives them, kept for a retention period and up to a size.
 *
 * Durability: append() resolves only after its record is written and fdatasync'ed; appends made in the same moment
 * share one write and one flush (group commit). Readers see an event only once it is durable ('appended' event).
 */
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RecordHeader } from "./log-segment";
import { Partition } from "./log-partition";

export const DEFAULT_PARTITIONS = 2;
export const DEFAULT_RETENTION_MS = 24 * 3600_000;
/** Oldest segments are dropped beyond this, whatever their age: a local hub must not fill the disk. */
export const DEFAULT_MAX_BYTES_PER_PARTITION = 1024 * 1024 * 1024;
const SEGMENT_BYTES = 16 * 1024 * 1024;
const SWEEP_INTERVAL_MS = 60_000;

export interface EventInput {
  body: Buffer;
  properties: RecordHeader["p"];
  messageProperties: RecordHeader["m"];
  annotations: RecordHeader["a"];
}

export interface LoggedEvent extends EventInput {
  partition: number;
  sequenceNumber: number;
  offset: number;
  enqueuedTimeMs: number;
}

export interface EventLogOptions {
  partitions?: number;
  retentionMs?: number;
  maxBytesPerPartition?: number;
  segmentBytes?: number;
  /** false: keep the log in a temporary directory without flushing, removed on close (`--in-memory`). */
  durable?: boolean;
  now?: () => number;
}

export type { Partition };

export interface PartitionInfo {
  beginSequenceNumber: number;
  lastSequenceNumber: number;
  lastOffset: number;
  lastEnqueuedTimeMs: number;
  isEmpty: boolean;
}

/** Partitions by device, as IoT Hub does, so that one device's events keep their order. */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % partitions;
}

export class EventLog extends EventEmitter {
  readonly partitions: Partition[] = [];
  readonly retentionMs: number;
  readonly maxBytesPerPartition: number;
  readonly segmentBytes: number;
  readonly durable: boolean;
  readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  private constructor(
    readonly dir: string,
    options: EventLogOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.maxBytesPerPartition = options.maxBytesPerPartition ?? DEFAULT_MAX_BYTES_PER_PARTITION;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES;
    this.durable = options.durable ?? true;
    this.now = options.now ?? Date.now;
    const count = options.partitions ?? DEFAULT_PARTITIONS;
    for (let id = 0; id < count; id++) this.partitions.push(new Partition(id, path.join(dir, `partition-${id}`), this));
    for (const partition of this.partitions) partition.sweep();
    this.sweeper = setInterval(() => this.partitions.forEach((p) => p.sweep()), SWEEP_INTERVAL_MS).unref();
  }

  /** Opens (or creates) the log in `dir`; without `dir`, in a temporary directory removed on close. */
  static open(dir: string | undefined, options: EventLogOptions = {}): EventLog {
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      const existing = fs.readdirSync(dir).filter((name) => name.startsWith("partition-")).length;
      if (existing && options.partitions !== undefined && existing !== options.partitions) {
        throw new Error(
          `The event log in ${dir} has ${existing} partitions, not ${options.partitions}: ` +
            "use the same partition count, or another state directory.",
        );
      }
      return new EventLog(dir, { ...options, partitions: options.partitions ?? (existing || undefined) });
    }
    return new EventLog(fs.mkdtempSync(path.join(os.tmpdir(), "event-log-")), { ...options, durable: false });
  }

  /** When the log was first made (its directory's birth, where the file system records one). */
  get createdAt(): Date {
    const stat = fs.statSync(this.dir);
    return new Date(stat.birthtimeMs || stat.ctimeMs);
  }

  /** Appends an event to the partition of `partitionKey` (the device id); resolves once it is durable. */
  append(partitionKey: string, input: EventInput): Promise<LoggedEvent> {
    return this.partitions[partitionOf(partitionKey, this.partitions.length)].append(input);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all(this.partitions.map((p) => p.close()));
    if (!this.durable) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
