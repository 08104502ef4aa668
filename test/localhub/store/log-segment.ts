/**
 * One segment file of a partition of the event log: length-prefixed, checksummed records appended in order. Kept
 * apart from event-log.ts so the byte format and its crash recovery (a torn tail is cut off) can be read on their own.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { crc32 } from "node:zlib";

/** What a record keeps besides its body; short keys because every event pays for them on disk. */
export interface RecordHeader {
  /** sequence number */
  s: number;
  /** enqueued time, ms since the epoch */
  t: number;
  /** application properties */
  p: Record<string, string | number | boolean>;
  /** AMQP message properties (message_id, correlation_id, content_type, content_encoding, user_id, ...) */
  m: Record<string, string>;
  /** message annotations the hub stamps */
  a: Record<string, string | number>;
}

export interface DecodedRecord {
  header: RecordHeader;
  body: Buffer;
  /** Position of the record in its segment, and its size on disk. */
  pos: number;
  size: number;
}

// Record layout: u32 size of what follows the first 8 bytes, u32 CRC-32 of it, u32 header length, header JSON, body.
const PREFIX = 8;

/**
 * Annotation and property objects repeat for every message of an identity or of a property bag, frozen
 * (core/telemetry.ts): their JSON is made once per object.
 */
const jsonOfShared = new WeakMap<object, string>();

function jsonOf(value: object): string {
  let json = jsonOfShared.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (Object.isFrozen(value)) jsonOfShared.set(value, json);
  }
  return json;
}

function headerJson(header: RecordHeader): string {
  return `{"s":${header.s},"t":${header.t},"p":${jsonOf(header.p)},"m":${jsonOf(header.m)},"a":${jsonOf(header.a)}}`;
}

export function encodeRecord(header: RecordHeader, body: Buffer): Buffer {
  // The header's JSON is written straight into the record: no Buffer of its own to allocate and copy per event.
  const json = headerJson(header);
  const jsonLength = Buffer.byteLength(json, "utf8");
  const record = Buffer.allocUnsafe(PREFIX + 4 + jsonLength + body.length);
  record.writeUInt32BE(4 + jsonLength + body.length, 0);
  record.writeUInt32BE(jsonLength, PREFIX);
  record.write(json, PREFIX + 4, jsonLength, "utf8");
  body.copy(record, PREFIX + 4 + jsonLength);
  record.writeUInt32BE(crc32(record.subarray(PREFIX)), 4);
  return record;
}

/** Decodes the record at `pos`, or returns undefined when it is incomplete or its checksum does not match. */
export function decodeRecord(data: Buffer, pos: number): DecodedRecord | undefined {
  if (data.length - pos < PREFIX + 4) return undefined;
  const length = data.readUInt32BE(pos);
  if (length < 4 || data.length - pos - PREFIX < length) return undefined;
  const payload = data.subarray(pos + PREFIX, pos + PREFIX + length);
  if (crc32(payload) !== data.readUInt32BE(pos + 4)) return undefined;
  const headerLength = payload.readUInt32BE(0);
  if (headerLength > length - 4) return undefined;
  try {
    const header = JSON.parse(payload.toString("utf8", 4, 4 + headerLength)) as RecordHeader;
    return { header, body: Buffer.from(payload.subarray(4 + headerLength)), pos, size: PREFIX + length };
  } catch {
    return undefined;
  }
}

/** A segment's name carries the offset and sequence number of its first record, so an empty one still knows both. */
export function segmentName(baseOffset: number, baseSequence: number): string {
  return `${String(baseOffset).padStart(16, "0")}-${String(baseSequence).padStart(12, "0")}.log`;
}

export function parseSegmentName(name: string): { baseOffset: number; baseSequence: number } | undefined {
  const match = /^(\d{16})-(\d{12})\.log$/.exec(name);
  return match ? { baseOffset: Number(match[1]), baseSequence: Number(match[2]) } : undefined;
}

export class Segment {
  /** Bytes of whole records in the file. */
  size = 0;
  lastTime = 0;
  private readFd: number | undefined;

  constructor(
    readonly file: string,
    readonly baseOffset: number,
    readonly baseSequence: number,
  ) {}

  static list(dir: string): Segment[] {
    return fs
      .readdirSync(dir)
      .map((name) => ({ name, parsed: parseSegmentName(name) }))
      .filter((entry) => entry.parsed)
      .map((entry) => new Segment(path.join(dir, entry.name), entry.parsed!.baseOffset, entry.parsed!.baseSequence))
      .sort((a, b) => a.baseOffset - b.baseOffset);
  }

  /**
   * Reads every whole record; a torn or corrupt tail (a kill during a write that was never acknowledged) is cut off
   * the file, so that new records follow the last good one.
   */
  recover(): DecodedRecord[] {
    const data = fs.existsSync(this.file) ? fs.readFileSync(this.file) : Buffer.alloc(0);
    const records: DecodedRecord[] = [];
    let pos = 0;
    for (let record = decodeRecord(data, pos); record; record = decodeRecord(data, pos)) {
      records.push(record);
      pos += record.size;
    }
    if (pos < data.length) fs.truncateSync(this.file, pos);
    this.size = pos;
    this.lastTime = records.length ? records[records.length - 1].header.t : 0;
    return records;
  }

  /** Reads one record back from disk (for events no longer held in memory). */
  read(pos: number, size: number): DecodedRecord | undefined {
    this.readFd ??= fs.openSync(this.file, "r");
    const data = Buffer.allocUnsafe(size);
    fs.readSync(this.readFd, data, 0, size, pos);
    return decodeRecord(data, 0);
  }

  remove(): void {
    this.closeReader();
    fs.rmSync(this.file, { force: true });
  }

  closeReader(): void {
    if (this.readFd !== undefined) fs.closeSync(this.readFd);
    this.readFd = undefined;
  }
}
