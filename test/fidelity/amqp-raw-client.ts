/**
 * A minimal AMQP 1.0 client that writes frames with rhea's own encoders and hands back every frame the hub sends
 * undecoded by any client library: the fields as listed on the wire (how many, which types), what pyamqp and uamqp
 * see before their own decoding. Only for the fidelity tests.
 */
import * as tls from "node:tls";

/* eslint-disable @typescript-eslint/no-require-imports -- rhea exports no types for its frame and type codecs */
const frames = require("rhea/lib/frames.js") as Frames;
const terminus = require("rhea/lib/terminus.js") as Record<"source" | "target", (fields: object) => Composite>;
const types = require("rhea/lib/types.js") as {
  Reader: new (buffer: Buffer) => { read(): Typed; remaining(): number };
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** A value as rhea's reader gives it: its AMQP type name (Int, SmallUint, List32...) and its value. */
export interface Typed {
  type: { name: string };
  value: unknown;
  descriptor?: Typed;
}

interface Composite {
  value: Typed[];
  described(): unknown;
  [field: string]: unknown;
}

interface Frames {
  read_frame(buffer: Buffer): { type: number; channel: number; performative?: Composite; payload?: Buffer };
  write_frame(frame: unknown): Buffer;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): unknown;
  sasl_frame(performative: unknown): unknown;
  [performative: string]: unknown;
}

/** One frame from the hub: its performative's name, its fields as sent, and its payload. */
export interface Received {
  name: string;
  fields: Typed[];
  performative: Composite;
  payload?: Buffer;
}

const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);
const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);

export class RawAmqpClient {
  private buffer = Buffer.alloc(0);
  private expectHeader = true;
  private readonly received: Received[] = [];
  private waiter: (() => void) | undefined;

  private constructor(private readonly socket: tls.TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.parse();
      this.waiter?.();
    });
  }

  static async connect(port: number): Promise<RawAmqpClient> {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost" });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    return new RawAmqpClient(socket);
  }

  private parse(): void {
    for (;;) {
      if (this.expectHeader) {
        if (this.buffer.length < 8) return;
        this.buffer = this.buffer.subarray(8);
        this.expectHeader = false;
        continue;
      }
      if (this.buffer.length < 4) return;
      const size = this.buffer.readUInt32BE(0);
      if (this.buffer.length < size) return;
      const frame = frames.read_frame(this.buffer.subarray(0, size));
      this.buffer = this.buffer.subarray(size);
      if (!frame.performative) continue; // an empty frame (heartbeat)
      const name = String((frame.performative.constructor as { toString(): string }).toString()).split("#")[0];
      this.received.push({
        name,
        fields: frame.performative.value,
        performative: frame.performative,
        payload: frame.payload,
      });
      // After SASL succeeds, the hub starts the AMQP layer with its own protocol header.
      if (name === "sasl_outcome") this.expectHeader = true;
    }
  }

  /** Waits for the next frame of that performative (frames before it are kept for later calls). */
  async next(name: string, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex((frame) => frame.name === name);
      if (index >= 0) return this.received.splice(index, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${name} frame from the hub within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  sasl(mechanism: string): void {
    this.socket.write(SASL_HEADER);
    this.socket.write(frames.write_frame(frames.sasl_frame(this.make("sasl_init", { mechanism }).described())));
  }

  amqpHeader(): void {
    this.socket.write(AMQP_HEADER);
  }

  /** Writes a performative (open, begin, attach, flow, transfer...) with these fields on a channel. */
  send(name: string, fields: Record<string, unknown>, payload?: Buffer, channel = 0): void {
    for (const end of ["source", "target"] as const) {
      if (name === "attach" && fields[end]) fields = { ...fields, [end]: terminus[end](fields[end]).described() };
    }
    this.socket.write(frames.write_frame(frames.amqp_frame(channel, this.make(name, fields).described(), payload)));
  }

  private make(name: string, fields: Record<string, unknown>): Composite {
    return (frames[name] as (fields: Record<string, unknown>) => Composite)(fields);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The sections of an encoded message, by descriptor code (0x74 application-properties, 0x75 data...). */
export function messageSections(payload: Buffer): Map<number, Typed> {
  const reader = new types.Reader(payload);
  const sections = new Map<number, Typed>();
  while (reader.remaining() > 0) {
    const section = reader.read();
    sections.set(Number(section.descriptor?.value), section);
  }
  return sections;
}

/** A map section's entries with their AMQP types: key text -> typed value. */
export function typedEntries(map: Typed): Map<string, Typed> {
  const items = map.value as Typed[];
  const entries = new Map<string, Typed>();
  for (let i = 0; i + 1 < items.length; i += 2) entries.set(String(items[i].value), items[i + 1]);
  return entries;
}
