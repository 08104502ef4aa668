/**
 * Reading a request body within the size limit and parsing it as JSON. A body that is not valid UTF-8 is refused,
 * not silently repaired.
 */
import type { IncomingMessage } from "node:http";
import { HubError, badRequest } from "../../core/errors";
import { parseBoundedJson } from "../../core/json-depth";
import type { Json } from "../../core/twin-document";

export const MAX_BODY_BYTES = 256 * 1024;

const tooLarge = (max: number) =>
  new HubError(413, "RequestEntityTooLarge", `The request body is larger than ${max} bytes`);

/**
 * A body over the limit is read on and thrown away up to this many bytes, so that the client, still sending, can read
 * the 413 (closing at once resets the connection and loses the answer). Past it the connection is closed.
 */
export const MAX_DISCARDED_BODY_BYTES = 16 * 1024 * 1024;

export function readBody(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers["content-length"] ?? 0);
    if (announced > max) {
      discard(req, 0);
      return reject(tooLarge(max));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) return void chunks.push(chunk);
      req.off("data", onData);
      discard(req, size);
      reject(tooLarge(max));
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Reads the rest of a refused body and drops it, closing the connection once MAX_DISCARDED_BODY_BYTES have come. */
function discard(req: IncomingMessage, already: number): void {
  let discarded = already;
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARDED_BODY_BYTES) req.socket.destroy();
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function parseJson(bytes: Buffer): Json {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest("The request body is not valid UTF-8");
  }
  if (!text.trim()) return {};
  return parseBoundedJson(text, "The request body");
}
