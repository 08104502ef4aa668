/**
 * Raw AMQP 1.0 for the protocol tests: protocol headers, frames and type encodings built byte by byte (so that a test
 * can send what no client library would), over TLS or WebSockets, and a reader of the frames the hub sends back.
 */
import type { Duplex } from "node:stream";
import { createWebSocketStream } from "ws";
import { EventHubConsumerClient } from "@azure/event-hubs";
import type { Hub } from "../localhub";
import { tlsConnect, webSocket } from "./raw";

export const SASL_HEADER = Buffer.from("AMQP\x03\x01\x00\x00", "latin1");
export const AMQP_HEADER = Buffer.from("AMQP\x00\x01\x00\x00", "latin1");

// ---- encodings ----

const u32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
};
export const nul = () => Buffer.from([0x40]);
export const bool = (value: boolean) => Buffer.from([value ? 0x41 : 0x42]);
export const uint = (value: number) => Buffer.concat([Buffer.from([0x70]), u32(value)]);
export const ushort = (value: number) => Buffer.from([0x60, value >> 8, value & 0xff]);
export const str = (value: string) =>
  Buffer.concat([Buffer.from([0xb1]), u32(Buffer.byteLength(value)), Buffer.from(value)]);
export const sym = (value: string) => Buffer.concat([Buffer.from([0xb3]), u32(value.length), Buffer.from(value)]);
export const bin = (value: Buffer) => Buffer.concat([Buffer.from([0xb0]), u32(value.length), value]);
export const list = (items: Buffer[]) => {
  const body = Buffer.concat(items);
  return Buffer.concat([Buffer.from([0xd0]), u32(body.length + 4), u32(items.length), body]);
};
export const map = (pairs: [Buffer, Buffer][]) => {
  const body = Buffer.concat(pairs.flat());
  return Buffer.concat([Buffer.from([0xd1]), u32(body.length + 4), u32(pairs.length * 2), body]);
};
/** A described value with a small numeric descriptor (every performative and message section). */
export const described = (code: number, value: Buffer) => Buffer.concat([Buffer.from([0x00, 0x53, code]), value]);
/** An array32 announcing 2^32-1 nulls in 10 bytes: rhea's decoder loops over them forever. */
export const NULLS_ARRAY = Buffer.concat([Buffer.from([0xf0]), u32(5), u32(0xffffffff), Buffer.from([0x40])]);

export function frame(body: Buffer, options: { type?: number; channel?: number } = {}): Buffer {
  const head = Buffer.from([0, 0, 0, 0, 2, options.type ?? 0, 0, 0]);
  head.writeUInt32BE(body.length + 8);
  head.writeUInt16BE(options.channel ?? 0, 6);
  return Buffer.concat([head, body]);
}

export const saslInit = (mechanism: string, ...more: Buffer[]) =>
  frame(described(0x41, list([sym(mechanism), ...more])), { type: 1 });
export const open = (maxFrameSize = 65_536) =>
  frame(described(0x10, list([str("raw-test"), nul(), uint(maxFrameSize)])));
export const begin = (channel: number) =>
  frame(described(0x11, list([nul(), uint(0), uint(100), uint(100)])), { channel });
/** ATTACH of a sending link (role false) to `address` (a target), as a client sends to `$cbs` or C2D. */
export const attach = (channel: number, handle: number, address = "$cbs", name = `link-${channel}-${handle}`) =>
  frame(
    described(
      0x12,
      list([str(name), uint(handle), bool(false), nul(), nul(), nul(), described(0x29, list([str(address)]))]),
    ),
    { channel },
  );
export const detach = (channel: number, handle: number) =>
  frame(described(0x16, list([uint(handle), bool(true)])), { channel });
export const transfer = (channel: number, handle: number, deliveryId: number, more: boolean, payload: Buffer) =>
  frame(
    Buffer.concat([
      described(
        0x14,
        list([uint(handle), uint(deliveryId), bin(Buffer.from([deliveryId])), uint(0), bool(false), bool(more)]),
      ),
      payload,
    ]),
    { channel },
  );

// ---- connections ----

/** A stream to the AMQP edge and every frame it sends back, parsed into type, channel and performative code. */
export class RawAmqp {
  readonly frames: { type: number; channel: number; code?: number; body: Buffer }[] = [];
  readonly closed: Promise<void>;
  private input = Buffer.alloc(0);
  private headers = 0;

  constructor(
    readonly stream: Duplex,
    closed?: Promise<void>,
  ) {
    stream.on("error", () => {});
    stream.on("data", (chunk: Buffer) => this.read(chunk));
    this.closed = closed ?? new Promise((resolve) => stream.once("close", () => resolve()));
  }

  private read(chunk: Buffer): void {
    this.input = Buffer.concat([this.input, chunk]);
    for (;;) {
      if (this.input.toString("latin1", 0, 4) === "AMQP" && this.input.length >= 8) {
        this.input = this.input.subarray(8);
        this.headers++;
        continue;
      }
      if (this.input.length < 8 || this.input.length < this.input.readUInt32BE(0)) return;
      const size = this.input.readUInt32BE(0);
      const body = this.input.subarray(this.input[4] * 4, size);
      this.frames.push({ type: this.input[5], channel: this.input.readUInt16BE(6), code: body[2], body });
      this.input = this.input.subarray(size);
    }
  }

  write(...bytes: Buffer[]): void {
    this.stream.write(Buffer.concat(bytes));
  }

  /** Waits up to `ms` for a frame with this performative code (0x10 OPEN, 0x11 BEGIN, 0x18 CLOSE, 0x44 outcome). */
  async next(code: number, ms = 5000): Promise<{ channel: number; body: Buffer }> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find((f) => f.code === code);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no frame 0x${code.toString(16)} (got ${this.frames.map((f) => f.code).join(",")})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** The error condition of the hub's CLOSE, read from its bytes ("amqp:..."). */
  async closeCondition(ms = 5000): Promise<string | undefined> {
    const close = await this.next(0x18, ms);
    return /(amqp|com\.microsoft):[a-z:-]+/.exec(close.body.toString("latin1"))?.[0];
  }

  /** Sends the AMQP header and an OPEN (no SASL: the hub allows it, as IoT Hub allows CBS later) and waits for OPEN. */
  async opened(maxFrameSize?: number): Promise<this> {
    this.write(AMQP_HEADER, open(maxFrameSize));
    await this.next(0x10);
    return this;
  }

  end(): void {
    this.stream.destroy();
  }
}

export async function amqpOverTls(hub: Hub): Promise<RawAmqp> {
  return new RawAmqp(await tlsConnect(hub.ports.amqp));
}

export async function amqpOverWebSocket(hub: Hub): Promise<RawAmqp> {
  const ws = await webSocket(hub, "/$iothub/websocket", "AMQPWSB10");
  ws.on("error", () => {});
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  return new RawAmqp(createWebSocketStream(ws), closed);
}

/** Resolves whether `client` was closed by the hub within `ms`. */
export function closedWithin(client: RawAmqp, ms: number): Promise<boolean> {
  return Promise.race([
    client.closed.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref()),
  ]);
}

/** A valid AMQP client is still served: the Event Hubs client authenticates by CBS and reads $management. */
export async function expectAmqpServed(hub: Hub): Promise<void> {
  const client = new EventHubConsumerClient("$Default", hub.eventHubConnectionString(), {
    retryOptions: { maxRetries: 0, timeoutInMs: 10_000 },
  });
  try {
    const properties = await client.getEventHubProperties();
    expect(properties.partitionIds.length).toBeGreaterThan(0);
  } finally {
    await client.close();
  }
}
