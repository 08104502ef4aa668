/**
 * One partition of the event log: its segment files, the index of its durable events (sequence number, offset,
 * time, where on disk), the group commit of appends, retention, and a cache of recent events for readers.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EventInput, EventLog, LoggedEvent, PartitionInfo } from "./event-log";
import { RecordHeader, Segment, encodeRecord, segmentName } from "./log-segment";

/** Recent events stay decoded in memory for readers; older ones are read back from disk. */
const CACHE_BYTES_PER_PARTITION = 32 * 1024 * 1024;

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

export class Partition {
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
    if (last) {
      this.nextSequence = last.sequenceNumber + 1;
      this.lastTime = last.time;
    }
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
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
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
      if (entry?.event) {
        this.cachedBytes -= entry.size;
        entry.event = undefined;
      }
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
