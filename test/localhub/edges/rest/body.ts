/**
 * Reading a request body within the size limit and parsing it as JSON. A body that is not valid UTF-8 is refused,
 * not silently repaired.
 */
import type { IncomingMessage } from "node:http";
import { HubError, badRequest } from "../../core/errors";
import { parseBoundedJson } from "../../core/json-depth";
import type { Json } from "../../core/twin-document";

export const MAX_BODY_BYTES = 256 * 1024;

const tooLarge = () =>
  new HubError(413, "RequestEntityTooLarge", `The request body is larger than ${MAX_BODY_BYTES} bytes`);

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else {
        reject(tooLarge());
        req.destroy();
      }
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
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
