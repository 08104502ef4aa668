/**
 * Request bodies for the hub's own HTTP APIs (admin faults, portal): read up to a limit, refused past it before the
 * rest is buffered, decoded as UTF-8 JSON. One clear error each way; never a crash.
 */
import type { IncomingMessage } from "node:http";

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new BodyError(413, `the request body is larger than ${maxBytes} bytes`);
    if (Number(req.headers["content-length"] ?? 0) > maxBytes) {
      req.resume();
      return reject(tooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(tooLarge());
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", reject);
    req.on("end", () => {
      if (failed) return;
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
      } catch {
        return reject(new BodyError(400, "the request body is not valid UTF-8"));
      }
      if (!text.trim()) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new BodyError(400, "the request body is not valid JSON"));
      }
    });
  });
}
