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
import { RecordHeader, Segment, encodeRecord, segmentName } from "./log-segment";

export const DEFAULT_PARTITIONS = 2;
export const DEFAULT_RETENTION_MS = 24 * 3600_000;
/** Oldest segments are dropped beyond this, whatever their age: a local hub must not fill the disk. */
export const DEFAULT_MAX_BYTES_PER_PARTITION = 1024 * 1024 * 1024;
const SEGMENT_BYTES = 16 * 1024 * 1024;
/** Recent events stay decoded in memory for readers; older ones are read back from disk. */
const CACHE_BYTES_PER_PARTITION = 32 * 1024 * 1024;
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

export interface PartitionInfo {
  beginSequenceNumber: number;
  lastSequenceNumber: number;
  lastOffset: number;
  lastEnqueuedTimeMs: number;
  isEmpty: boolean;
}

interface Entry {
  event: LoggedEvent | undefined;
  sequenceNumber: number;
  offset: number;
  time: number;
  segment: Segment;
  pos: number;
  size: number;
}

interface Pending {
  header: RecordHeader;
  event: LoggedEvent;
  record: Buffer;
  resolve(event: LoggedEvent): void;
  reject(err: Error): void;
}

/** Partitions by device, as IoT Hub does, so that one device's events keep their order. */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % partitions;
}

class Partition {
  readonly entries: Entry[] = [];
  private segments: Segment[] = [];
  private fd = -1;
  private nextSequence = 0;
  /** The sequence number after the last durable event. */
  private durableNext = 0;
  private nextOffset = 0;
  private lastTime = 0;
  private pending: Pending[] = [];
  private flushing = false;
  private cachedBytes = 0;
  private firstCached = 0;

  constructor(
    readonly id: number,
    private readonly dir: string,
    private readonly log: EventLog,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.segments = Segment.list(dir);
    for (const segment of this.segments) {
      for (const record of segment.recover()) {
        const { s, t } = record.header;
        this.entries.push({
          event: undefined,
          sequenceNumber: s,
          offset: segment.baseOffset + record.pos,
          time: t,
          segment,
          pos: record.pos,
          size: record.size,
        });
      }
      this.nextSequence = Math.max(this.nextSequence, segment.baseSequence);
      this.nextOffset = Math.max(this.nextOffset, segment.baseOffset + segment.size);
    }
    const last = this.entries[this.entries.length - 1];
    if (last) ((this.nextSequence = last.sequenceNumber + 1), (this.lastTime = last.time));
    this.firstCached = this.durableNext = this.nextSequence;
    if (!this.segments.length) this.segments.push(this.newSegment());
    this.fd = fs.openSync(this.active.file, "a");
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  private newSegment(): Segment {
    const segment = new Segment(
      path.join(this.dir, segmentName(this.nextOffset, this.nextSequence)),
      this.nextOffset,
      this.nextSequence,
    );
    fs.writeFileSync(segment.file, "");
    return segment;
  }

  append(input: EventInput): Promise<LoggedEvent> {
    // Enqueued times never go backwards within a partition, so a time filter finds a single point.
    const time = (this.lastTime = Math.max(this.lastTime, this.log.now()));
    const header: RecordHeader = {
      s: this.nextSequence++,
      t: time,
      p: input.properties,
      m: input.messageProperties,
      a: input.annotations,
    };
    const record = encodeRecord(header, input.body);
    const event: LoggedEvent = {
      body: input.body,
      properties: input.properties,
      messageProperties: input.messageProperties,
      annotations: input.annotations,
      partition: this.id,
      sequenceNumber: header.s,
      offset: this.nextOffset,
      enqueuedTimeMs: time,
    };
    this.nextOffset += record.length;
    return new Promise((resolve, reject) => {
      this.pending.push({ header, event, record, resolve, reject });
      if (!this.flushing) ((this.flushing = true), setImmediate(() => this.flush()));
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (!batch.length || this.fd < 0) {
      this.flushing = false;
      for (const item of batch) item.reject(new Error("the event log is closed"));
      return;
    }
    if (this.active.size >= this.log.segmentBytes) this.roll(batch[0].event);
    const segment = this.active;
    const done = (err: Error | null) => {
      if (err) {
        for (const item of batch) item.reject(err);
      } else {
        for (const item of batch) this.accept(item, segment);
        this.log.emit("appended", this.id);
        for (const item of batch) item.resolve(item.event);
        if (this.totalBytes() > this.log.maxBytesPerPartition) this.sweep();
      }
      if (this.pending.length) setImmediate(() => this.flush());
      else this.flushing = false;
    };
    fs.writev(
      this.fd,
      batch.map((item) => item.record),
      (err) => (err || !this.log.durable ? done(err) : fs.fdatasync(this.fd, done)),
    );
  }

  private accept(item: Pending, segment: Segment): void {
    const pos = item.event.offset - segment.baseOffset;
    segment.size = pos + item.record.length;
    segment.lastTime = item.event.enqueuedTimeMs;
    this.durableNext = item.event.sequenceNumber + 1;
    this.entries.push({
      event: item.event,
      sequenceNumber: item.event.sequenceNumber,
      offset: item.event.offset,
      time: item.event.enqueuedTimeMs,
      segment,
      pos,
      size: item.record.length,
    });
    this.cachedBytes += item.record.length;
    while (this.cachedBytes > CACHE_BYTES_PER_PARTITION && this.firstCached < this.nextSequence) {
      const entry = this.entry(this.firstCached++);
      if (entry?.event) ((this.cachedBytes -= entry.size), (entry.event = undefined));
    }
  }

  private roll(first: LoggedEvent): void {
    fs.closeSync(this.fd);
    const segment = new Segment(
      path.join(this.dir, segmentName(first.offset, first.sequenceNumber)),
      first.offset,
      first.sequenceNumber,
    );
    fs.writeFileSync(segment.file, "");
    this.segments.push(segment);
    this.fd = fs.openSync(segment.file, "a");
  }

  private totalBytes(): number {
    return this.segments.reduce((sum, segment) => sum + segment.size, 0);
  }

  /** Drops whole segments older than the retention period, then the oldest ones beyond the size limit. */
  sweep(): void {
    const horizon = this.log.now() - this.log.retentionMs;
    let total = this.totalBytes();
    while (this.segments.length > 1 && (this.segments[0].lastTime < horizon || total > this.log.maxBytesPerPartition)) {
      const dropped = this.segments.shift()!;
      total -= dropped.size;
      let count = 0;
      while (count < this.entries.length && this.entries[count].segment === dropped) {
        if (this.entries[count].event) this.cachedBytes -= this.entries[count].size;
        count++;
      }
      this.entries.splice(0, count);
      dropped.remove();
    }
  }

  entry(sequenceNumber: number): Entry | undefined {
    const first = this.entries[0];
    return first ? this.entries[sequenceNumber - first.sequenceNumber] : undefined;
  }

  /** The durable event with this sequence number, read back from disk if it is no longer cached. */
  event(sequenceNumber: number): LoggedEvent | undefined {
    const entry = this.entry(sequenceNumber);
    if (!entry) return undefined;
    if (entry.event) return entry.event;
    const record = entry.segment.read(entry.pos, entry.size);
    if (!record) return undefined;
    return {
      body: record.body,
      properties: record.header.p,
      messageProperties: record.header.m,
      annotations: record.header.a,
      partition: this.id,
      sequenceNumber: entry.sequenceNumber,
      offset: entry.offset,
      enqueuedTimeMs: entry.time,
    };
  }

  /** The first sequence number a reader from `start` gets (the next one to be written when none is stored yet). */
  firstAfter(predicate: (entry: Entry) => boolean): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (predicate(this.entries[mid])) high = mid;
      else low = mid + 1;
    }
    return low < this.entries.length ? this.entries[low].sequenceNumber : this.endSequence;
  }

  /** The sequence number the next durable event will get. */
  get endSequence(): number {
    return this.durableNext;
  }

  info(): PartitionInfo {
    const first = this.entries[0];
    const last = this.entries[this.entries.length - 1];
    return {
      beginSequenceNumber: first ? first.sequenceNumber : this.endSequence,
      lastSequenceNumber: last ? last.sequenceNumber : this.endSequence - 1,
      lastOffset: last ? last.offset : -1,
      lastEnqueuedTimeMs: last ? last.time : 0,
      isEmpty: !last,
    };
  }

  async close(): Promise<void> {
    while (this.flushing) await new Promise((resolve) => setImmediate(resolve));
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    for (const segment of this.segments) segment.closeReader();
  }
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

export type { Partition };
