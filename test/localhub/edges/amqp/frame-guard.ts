/**
 * The byte-level guard between a client's stream (TLS or WebSocket) and rhea: it cuts the input into protocol
 * headers and frames itself, and hands rhea only whole frames that are within the size in force and whose encodings
 * hold what they announce (encoding-check.ts), messages included once all their transfer frames are in.
 */
import { EncodingError, Performative, checkValues, readPerformative } from "./encoding-check";
import { MAX_FRAME_SIZE, MAX_GATHERED_BYTES, MAX_INCOMING_MESSAGE_BYTES, MIN_MAX_FRAME_SIZE } from "./limits";

/** Why the guard stopped reading: an AMQP error condition and a description for the log and the CLOSE frame. */
export interface Refusal {
  condition: string;
  description: string;
}

const FRAMING = "amqp:connection:framing-error";
const DECODE = "amqp:decode-error";
const LIMIT = "amqp:resource-limit-exceeded";
const SASL_PROTOCOL_ID = 3;
const TYPE_AMQP = 0;
const TYPE_SASL = 1;
const TRANSFER = 0x14;
/** Performatives (AMQP 0x10-0x18, SASL 0x40-0x44): any other descriptor makes rhea throw, so we refuse it first. */
const isKnown = (code: number, type: number) =>
  type === TYPE_AMQP ? code >= 0x10 && code <= 0x18 : code >= 0x40 && code <= 0x44;

class GatheredTooMuch extends Error {}

/** An AMQP frame as the connection rules see it (connection-rules.ts). */
export interface GuardedFrame {
  channel: number;
  performative: Performative;
}

export interface FrameGuardHooks {
  /** Bytes rhea may read: protocol headers and whole, checked frames. */
  forward(bytes: Buffer): void;
  /** A checked AMQP frame, before rhea sees it; a Refusal stops the connection, "discard" skips the frame. */
  inspect?(frame: GuardedFrame): Refusal | "discard" | undefined;
  /** Called once, when the guard stops reading; nothing more is forwarded after it. */
  refuse(refusal: Refusal, phase: "header" | "sasl" | "amqp"): void;
}

/** The message of one delivery in progress on one link, gathered to be checked before rhea decodes it. */
interface Delivery {
  parts: Buffer[];
  bytes: number;
  /** From its first frame: rhea decodes only format 0 (an AMQP message). */
  format: number;
}

export class FrameGuard {
  private phase: "header" | "sasl" | "amqp" | "stopped" = "header";
  private afterHeader: "sasl" | "amqp" = "amqp";
  private pending: Buffer = Buffer.alloc(0);
  private readonly deliveries = new Map<string, Delivery>();
  /** Bytes gathered over all deliveries in progress on this connection. */
  private gathered = 0;

  constructor(private readonly hooks: FrameGuardHooks) {}

  /** True once the client has sent the AMQP (not SASL) protocol header. */
  get saslDone(): boolean {
    return this.phase === "amqp";
  }

  push(chunk: Buffer): void {
    if (this.phase === "stopped") return;
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (!this.stopped()) {
      const used = this.phase === "header" ? this.header(at) : this.frame(at);
      if (used === 0) break;
      at += used;
    }
    this.pending = this.stopped() ? Buffer.alloc(0) : this.pending.subarray(at);
  }

  /** A method, not a comparison: TypeScript would keep push()'s narrowing of `phase` across the calls that change it. */
  private stopped(): boolean {
    return this.phase === "stopped";
  }

  private stop(refusal: Refusal): 0 {
    const phase = this.phase as "header" | "sasl" | "amqp";
    this.phase = "stopped";
    this.deliveries.clear();
    this.hooks.refuse(refusal, phase);
    return 0;
  }

  /** An 8-byte protocol header: "AMQP", protocol id 0 (AMQP) or 3 (SASL), version 1.0.0. */
  private header(at: number): number {
    const bytes = this.pending.subarray(at, at + 8);
    if (bytes.length < 8) return 0;
    const id = bytes[4];
    if (bytes.toString("latin1", 0, 4) !== "AMQP" || (id !== 0 && id !== SASL_PROTOCOL_ID)) {
      return this.stop({
        condition: FRAMING,
        description: `not an AMQP 1.0 protocol header: ${bytes.toString("hex")}`,
      });
    }
    if (bytes[5] !== 1 || bytes[6] !== 0 || bytes[7] !== 0) {
      return this.stop({ condition: FRAMING, description: `unsupported AMQP version ${bytes.subarray(5).join(".")}` });
    }
    this.phase = id === SASL_PROTOCOL_ID ? "sasl" : "amqp";
    this.afterHeader = this.phase;
    this.hooks.forward(Buffer.from(bytes));
    return 8;
  }

  /** One frame, forwarded only once whole and checked; 0 while it is incomplete. */
  private frame(at: number): number {
    const available = this.pending.length - at;
    // After SASL the client sends the AMQP header: its "AMQP" would read as a frame size of about 1.1 GB.
    if (this.afterHeader === "sasl" && available >= 4 && this.pending.toString("latin1", at, at + 4) === "AMQP") {
      this.phase = "header";
      return this.header(at);
    }
    if (available < 8) return 0;
    const size = this.pending.readUInt32BE(at);
    const limit = this.phase === "sasl" ? MIN_MAX_FRAME_SIZE : MAX_FRAME_SIZE;
    if (size > limit) {
      return this.stop({ condition: FRAMING, description: `a frame of ${size} bytes (at most ${limit})` });
    }
    const doff = this.pending[at + 4];
    const type = this.pending[at + 5];
    if (size < 8 || doff < 2 || doff * 4 > size) {
      return this.stop({ condition: FRAMING, description: `a frame of ${size} bytes with data offset ${doff}` });
    }
    if (type !== (this.phase === "sasl" ? TYPE_SASL : TYPE_AMQP)) {
      return this.stop({ condition: FRAMING, description: `a frame of type ${type} during ${this.phase}` });
    }
    if (available < size) return 0;
    const frame = this.pending.subarray(at, at + size);
    const refusal = this.check(frame, doff * 4);
    if (refusal === "discard") return size;
    if (refusal) return this.stop(refusal);
    this.hooks.forward(Buffer.from(frame));
    return size;
  }

  private check(frame: Buffer, bodyAt: number): Refusal | "discard" | undefined {
    if (bodyAt === frame.length) return undefined; // an empty frame: a heartbeat
    const type = frame[5];
    const channel = frame.readUInt16BE(6);
    try {
      const performative = readPerformative(frame, bodyAt, frame.length, 10);
      if (!isKnown(performative.code, type)) {
        return { condition: DECODE, description: `unknown performative 0x${performative.code.toString(16)}` };
      }
      if (type === TYPE_SASL) {
        checkValues(frame, performative.end, frame.length);
        return undefined;
      }
      if (performative.code === TRANSFER) this.transfer(channel, performative, frame);
      return this.hooks.inspect?.({ channel, performative });
    } catch (err) {
      if (err instanceof GatheredTooMuch) return { condition: LIMIT, description: err.message };
      if (err instanceof EncodingError) return { condition: DECODE, description: err.message };
      throw err;
    }
  }

  /**
   * Gathers a delivery's payload and checks its sections when its last frame comes, before rhea decodes them.
   * A message past MAX_INCOMING_MESSAGE_BYTES is not gathered further: server.ts swaps it for a placeholder then.
   */
  private transfer(channel: number, transfer: Performative, frame: Buffer): void {
    const [handle, , , messageFormat, , more, , , , aborted] = transfer.fields;
    const key = `${channel}/${String(handle)}`;
    const payload = frame.subarray(transfer.end);
    let delivery = this.deliveries.get(key);
    if (!delivery) {
      delivery = { parts: [], bytes: 0, format: typeof messageFormat === "number" ? messageFormat : 0 };
      this.deliveries.set(key, delivery);
    }
    const before = delivery.bytes;
    if (before <= MAX_INCOMING_MESSAGE_BYTES) {
      delivery.parts.push(Buffer.from(payload));
      this.gathered += payload.length;
    }
    delivery.bytes += payload.length;
    if (this.gathered > MAX_GATHERED_BYTES) {
      throw new GatheredTooMuch(`messages in progress of more than ${MAX_GATHERED_BYTES} bytes in all`);
    }
    if (more === true && aborted !== true) return;
    this.deliveries.delete(key);
    this.gathered -= delivery.parts.reduce((sum, part) => sum + part.length, 0);
    if (aborted === true || delivery.format !== 0) return;
    // Past the limit before this frame, server.ts swapped rhea's copy for a placeholder: nothing of it is decoded.
    if (before > MAX_INCOMING_MESSAGE_BYTES) return;
    const message = delivery.parts.length === 1 ? delivery.parts[0] : Buffer.concat(delivery.parts);
    checkValues(message, 0, message.length);
  }
}

// ---- our own OPEN and CLOSE, for refusing a connection before rhea has answered its OPEN ----

/** A str32 (0xb1) or sym32 (0xb3). */
function text(value: string, code: number): Buffer {
  const bytes = Buffer.from(value.slice(0, 200), "utf8");
  const head = Buffer.from([code, 0, 0, 0, 0]);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

function describedList(descriptor: number, items: Buffer[]): Buffer {
  const body = Buffer.concat(items);
  const head = Buffer.from([0x00, 0x53, descriptor, 0xd0, 0, 0, 0, 0, 0, 0, 0, 0]);
  head.writeUInt32BE(body.length + 4, 4);
  head.writeUInt32BE(items.length, 8);
  return Buffer.concat([head, body]);
}

function amqpFrame(body: Buffer): Buffer {
  const head = Buffer.from([0, 0, 0, 0, 2, TYPE_AMQP, 0, 0]);
  head.writeUInt32BE(body.length + 8);
  return Buffer.concat([head, body]);
}

/** An OPEN (our container id and limits) then a CLOSE with the refusal's condition: how AMQP refuses a connection. */
export function closeFrames(containerId: string, refusal: Refusal): Buffer {
  const maxFrameSize = Buffer.from([0x70, 0, 0, 0, 0]);
  maxFrameSize.writeUInt32BE(MAX_FRAME_SIZE, 1);
  const open = describedList(0x10, [text(containerId, 0xb1), Buffer.from([0x40]), maxFrameSize]);
  const error = describedList(0x1d, [text(refusal.condition, 0xb3), text(refusal.description, 0xb1)]);
  return Buffer.concat([amqpFrame(open), amqpFrame(describedList(0x18, [error]))]);
}
