/**
 * What comes in before rhea sees it: the stream adapter that puts the frame guard between a socket and rhea, and the
 * cap on a message rhea is still gathering (it has no limit of its own).
 */
import type { Duplex } from "node:stream";
import type { Connection, Receiver } from "rhea";
import { message as amqpMessage } from "rhea";
import type { FrameGuard } from "./frame-guard";
import { MAX_INCOMING_MESSAGE_BYTES } from "./limits";

/** What an oversized message becomes: its links see this marker and refuse the delivery (devicebound.ts). */
export const OVERSIZED = "x-local-hub-oversized";
const OVERSIZED_PLACEHOLDER = amqpMessage.encode({ body: null, application_properties: { [OVERSIZED]: true } });

/**
 * rhea gathers the frames of a message in progress without a limit: past MAX_INCOMING_MESSAGE_BYTES, swap them for
 * a small placeholder message and drop the rest as it comes, so the delivery can still be refused properly.
 */
export function capIncomingMessages(connection: Connection): string | undefined {
  let capped: string | undefined;
  connection.each_link((link: Receiver & { _incomplete?: { frames: Buffer[] } }) => {
    const incomplete = link._incomplete;
    if (!incomplete || incomplete.frames.length < 2) return;
    if (incomplete.frames.reduce((sum, frame) => sum + frame.length, 0) <= MAX_INCOMING_MESSAGE_BYTES) return;
    const frames = [OVERSIZED_PLACEHOLDER];
    frames.push = () => frames.length;
    incomplete.frames = frames;
    capped = `a message of more than ${MAX_INCOMING_MESSAGE_BYTES} bytes on ${link.target?.address ?? link.name}`;
  });
  return capped;
}

/**
 * Rhea reads and writes this shape; adapting a Duplex ourselves puts the frame guard between the stream and rhea:
 * rhea's data handler gets only what the guard forwards.
 */
export function adapt(
  stream: Duplex,
  label: string,
  guard: FrameGuard,
  setInput: (input: (bytes: Buffer) => void) => void,
) {
  return {
    on(event: string, handler: (...args: unknown[]) => void) {
      if (event === "data") {
        setInput(handler);
        stream.on("data", (chunk: Buffer) => guard.push(chunk));
      } else if (event === "end") stream.on("close", handler);
      else stream.on(event, handler);
    },
    write: (data: Buffer) => void (stream.writable && stream.write(data)),
    end: () => stream.end(),
    destroy: () => stream.destroy(),
    get_id_string: () => label,
  };
}
