/**
 * Walks AMQP 1.0 type encodings without building values, so that rhea only ever decodes bytes that hold what they
 * announce: rhea's decoder believes a compound's or an array's count and loops over it (an array32 of 2^32-1 nulls
 * takes 24 bytes and never ends), and recurses once per level of nesting.
 */
import { MAX_NESTING } from "./limits";

export class EncodingError extends Error {}

/** Width of a fixed-width type's value, by its typecode's high nibble (0x4x: no bytes at all). */
const FIXED_WIDTH: Record<number, number> = { 0x4: 0, 0x5: 1, 0x6: 2, 0x7: 4, 0x8: 8, 0x9: 16 };
/** The typecodes rhea knows (types.js): any other makes it throw, and we refuse it first. */
const KNOWN_TYPECODES = new Set([
  0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x60, 0x61, 0x70, 0x71, 0x72, 0x73,
  0x74, 0x80, 0x81, 0x82, 0x83, 0x84, 0x94, 0x98, 0xa0, 0xa1, 0xa3, 0xb0, 0xb1, 0xb3, 0xc0, 0xc1, 0xd0, 0xd1, 0xe0,
  0xf0,
]);

function need(end: number, at: number, bytes: number, what: string): void {
  if (at + bytes > end) throw new EncodingError(`${what} runs past the end of its frame or section`);
}

function readUint(buffer: Buffer, at: number, width: number): number {
  return width === 1 ? buffer[at] : buffer.readUInt32BE(at);
}

/** Reads a constructor (descriptors first, each a whole value); returns the typecode and where its value starts. */
function constructorAt(buffer: Buffer, at: number, end: number, depth: number): { code: number; at: number } {
  need(end, at, 1, "a constructor");
  let code = buffer[at++];
  while (code === 0x00) {
    if (++depth > MAX_NESTING) throw new EncodingError(`descriptors nested deeper than ${MAX_NESTING}`);
    at = skipValue(buffer, at, end, depth);
    need(end, at, 1, "a described constructor");
    code = buffer[at++];
  }
  if (!KNOWN_TYPECODES.has(code)) throw new EncodingError(`unknown typecode 0x${code.toString(16)}`);
  return { code, at };
}

/** Where the value of type `code` starting at `at` ends; throws EncodingError unless it lies whole before `end`. */
function skipBody(buffer: Buffer, code: number, at: number, end: number, depth: number): number {
  const high = code >> 4;
  if (high in FIXED_WIDTH) {
    need(end, at, FIXED_WIDTH[high], "a fixed-width value");
    return at + FIXED_WIDTH[high];
  }
  const width = high === 0xa || high === 0xc || high === 0xe ? 1 : 4;
  need(end, at, width, "a size");
  const size = readUint(buffer, at, width);
  at += width;
  need(end, at, size, `a value of ${size} bytes`);
  const stop = at + size;
  if (high === 0xa || high === 0xb) return stop;
  if (++depth > MAX_NESTING) throw new EncodingError(`compounds nested deeper than ${MAX_NESTING}`);
  need(stop, at, width, "a count");
  const count = readUint(buffer, at, width);
  at += width;
  // Every element takes at least one byte of the compound's announced size: a count beyond that is a lie.
  if (count > stop - at) throw new EncodingError(`a count of ${count} in ${size} bytes`);
  if (high === 0xc || high === 0xd) {
    for (let i = 0; i < count; i++) at = skipValue(buffer, at, stop, depth);
  } else {
    const element = constructorAt(buffer, at, stop, depth);
    at = element.at;
    if (count > stop - at && count > 0) throw new EncodingError(`an array of ${count} elements in ${size} bytes`);
    const fixed = FIXED_WIDTH[element.code >> 4];
    if (fixed !== undefined) at += count * fixed;
    else for (let i = 0; i < count; i++) at = skipBody(buffer, element.code, at, stop, depth);
    need(stop, at, 0, "an array's elements");
  }
  if (at !== stop) throw new EncodingError(`a compound announcing ${size} bytes holds ${size - (stop - at)}`);
  return stop;
}

/** Where the whole value (constructor and body) starting at `at` ends. */
export function skipValue(buffer: Buffer, at: number, end: number, depth = 0): number {
  const constructor = constructorAt(buffer, at, end, depth);
  return skipBody(buffer, constructor.code, constructor.at, end, depth);
}

/** Checks that [at, end) is a sequence of whole values (a SASL body, or a message's sections). */
export function checkValues(buffer: Buffer, at: number, end: number): void {
  while (at < end) at = skipValue(buffer, at, end);
}

/** A performative as the guard needs it: its descriptor code and its list's leading primitive fields. */
export interface Performative {
  code: number;
  fields: (number | boolean | null | undefined)[];
  /** Where the performative ends: a transfer's payload follows. */
  end: number;
}

/** Reads a primitive field's value (uint, ushort, ubyte, ulong, boolean, null); undefined for anything else. */
function primitiveAt(buffer: Buffer, at: number, end: number): number | boolean | null | undefined {
  const code = buffer[at];
  if (code === 0x40) return null;
  if (code === 0x41 || code === 0x42) return code === 0x41;
  if (code === 0x43 || code === 0x44) return 0;
  if (at + 1 >= end) return undefined;
  if (code === 0x56) return buffer[at + 1] === 1;
  if (code === 0x50 || code === 0x52 || code === 0x53) return buffer[at + 1];
  if (code === 0x60 && at + 3 <= end) return buffer.readUInt16BE(at + 1);
  if (code === 0x70 && at + 5 <= end) return buffer.readUInt32BE(at + 1);
  if (code === 0x80 && at + 9 <= end) return Number(buffer.readBigUInt64BE(at + 1));
  return undefined;
}

/**
 * Checks the performative starting at `at` (a described list with a numeric descriptor, as every AMQP 1.0 client
 * sends) and reads its first `wanted` fields.
 */
export function readPerformative(buffer: Buffer, at: number, end: number, wanted: number): Performative {
  const stop = skipValue(buffer, at, end);
  if (buffer[at] !== 0x00) throw new EncodingError("a frame body that is no described performative");
  const descriptor = primitiveAt(buffer, at + 1, stop);
  if (typeof descriptor !== "number") throw new EncodingError("a performative without a numeric descriptor");
  let list = skipValue(buffer, at + 1, stop);
  const listCode = buffer[list++];
  const fields: Performative["fields"] = [];
  if (listCode === 0xc0 || listCode === 0xd0) {
    const width = listCode === 0xc0 ? 1 : 4;
    const count = readUint(buffer, list + width, width);
    let field = list + 2 * width;
    for (let i = 0; i < Math.min(count, wanted); i++) {
      fields.push(primitiveAt(buffer, field, stop));
      field = skipValue(buffer, field, stop);
    }
  } else if (listCode !== 0x45) {
    throw new EncodingError("a performative that is no list");
  }
  return { code: descriptor, fields, end: stop };
}
