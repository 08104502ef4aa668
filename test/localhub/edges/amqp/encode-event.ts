/**
 * Encodes a stored event as the AMQP message an Event Hubs reader receives, straight into bytes. rhea's general
 * encoder spent about 20 µs a message here, the largest cost of telemetry read-back; this one writes only the few
 * sections and types an event has (AMQP 1.0 part 3: message format; part 1: types).
 */
import type { LoggedEvent } from "../../core/telemetry";

type Value = string | number | boolean | Date | { long: number } | Buffer | null | undefined;

/** Grows as needed; one per encoding. */
class Writer {
  private buffer = Buffer.allocUnsafe(512);
  length = 0;

  private room(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }

  byte(value: number): void {
    this.room(1);
    this.buffer[this.length++] = value;
  }

  uint32(value: number): void {
    this.room(4);
    this.buffer.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  /** Two 32-bit halves: exact for every integer a double holds, without a BigInt per value. */
  int64(value: number): void {
    this.room(8);
    const high = Math.floor(Math.trunc(value) / 2 ** 32);
    this.buffer.writeInt32BE(high, this.length);
    this.buffer.writeUInt32BE(Math.trunc(value) - high * 2 ** 32, this.length + 4);
    this.length += 8;
  }

  bytes(data: Buffer): void {
    this.room(data.length);
    data.copy(this.buffer, this.length);
    this.length += data.length;
  }

  /** str32 (0xb1), sym32 (0xb3) or bin32 (0xb0): the 32-bit forms keep the code simple for any size. */
  variable(code: number, data: Buffer): void {
    this.byte(code);
    this.uint32(data.length);
    this.bytes(data);
  }

  /** A str32 or sym32 written in place, without a Buffer of its own. */
  string(code: number, text: string): void {
    const length = Buffer.byteLength(text, "utf8");
    this.room(5 + length);
    this.buffer[this.length] = code;
    this.buffer.writeUInt32BE(length, this.length + 1);
    this.buffer.write(text, this.length + 5, length, "utf8");
    this.length += 5 + length;
  }

  value(value: Value, symbol = false): void {
    if (value === null || value === undefined) return this.byte(0x40);
    if (typeof value === "string") return this.string(symbol ? 0xb3 : 0xb1, value);
    if (typeof value === "boolean") return this.byte(value ? 0x41 : 0x42);
    if (typeof value === "number") {
      if (Number.isInteger(value) && Math.abs(value) < 2 ** 31) {
        this.byte(0x71); // int
        this.room(4);
        this.buffer.writeInt32BE(value, this.length);
        this.length += 4;
      } else {
        this.byte(0x82); // double
        this.room(8);
        this.buffer.writeDoubleBE(value, this.length);
        this.length += 8;
      }
      return;
    }
    if (value instanceof Date) return (this.byte(0x83), this.int64(value.getTime())); // timestamp
    if (Buffer.isBuffer(value)) return this.variable(0xb0, value);
    this.byte(0x81); // long
    this.int64(value.long);
  }

  /** A compound (map32 0xd1 or list32 0xd0): size and count are patched in once the items are written. */
  compound(code: number, count: number, items: () => void): void {
    this.byte(code);
    this.uint32(0);
    const at = this.length;
    this.uint32(count);
    items();
    this.buffer.writeUInt32BE(this.length - at, at - 4);
  }

  section(descriptor: number): void {
    this.byte(0x00);
    this.byte(0x53); // smallulong descriptor
    this.byte(descriptor);
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/**
 * The annotations the hub stamps are one frozen object per identity (core/telemetry.ts): their encoded entries are
 * made once per object, and each event adds only its own four.
 */
const annotationEntries = new WeakMap<object, { bytes: Buffer; count: number }>();

function encodedAnnotations(annotations: LoggedEvent["annotations"]): { bytes: Buffer; count: number } {
  let encoded = annotationEntries.get(annotations);
  if (!encoded) {
    const writer = new Writer();
    const entries = Object.entries(annotations);
    for (const [key, value] of entries) {
      writer.value(key, true);
      writer.value(value);
    }
    encoded = { bytes: writer.done(), count: entries.length };
    // Events read back from disk each have their own object: keep only the shared ones.
    if (Object.isFrozen(annotations)) annotationEntries.set(annotations, encoded);
  }
  return encoded;
}

function map(writer: Writer, entries: [string, Value][], symbolKeys: boolean): void {
  writer.compound(0xd1, entries.length * 2, () => {
    for (const [key, value] of entries) {
      writer.value(key, symbolKeys);
      writer.value(value);
    }
  });
}

/** The properties section, in its field order; trailing empty fields are left out, as encoders do. */
function properties(event: LoggedEvent): Value[] {
  const m = event.messageProperties;
  const fields: Value[] = [
    m.message_id,
    m.user_id === undefined ? undefined : Buffer.from(m.user_id),
    m.to,
    undefined, // subject
    undefined, // reply-to
    m.correlation_id,
    m.content_type,
    m.content_encoding,
  ];
  while (fields.length && fields[fields.length - 1] === undefined) fields.pop();
  return fields;
}

export function encodeEvent(event: LoggedEvent): Buffer {
  const writer = new Writer();
  const enqueued = new Date(event.enqueuedTimeMs);
  writer.section(0x72); // message-annotations
  const stamped = encodedAnnotations(event.annotations);
  writer.compound(0xd1, (stamped.count + 4) * 2, () => {
    writer.bytes(stamped.bytes);
    writer.value("iothub-enqueuedtime", true);
    writer.value(enqueued);
    writer.value("x-opt-sequence-number", true);
    writer.value({ long: event.sequenceNumber });
    writer.value("x-opt-offset", true);
    writer.value(String(event.offset));
    writer.value("x-opt-enqueued-time", true);
    writer.value(enqueued);
  });
  const fields = properties(event);
  if (fields.length) {
    writer.section(0x73); // properties
    writer.compound(0xd0, fields.length, () => fields.forEach((field, i) => writer.value(field, i === 6 || i === 7)));
  }
  const application = Object.entries(event.properties);
  if (application.length) {
    writer.section(0x74); // application-properties
    map(writer, application, false);
  }
  writer.section(0x75); // data
  writer.variable(0xb0, event.body);
  return writer.done();
}
