/**
 * Gathers what one turn of the event loop writes to a connection into one write. Over TLS each write is a record of
 * its own, encrypted and sent by one system call: a group commit that acknowledges 200 messages, or a reader's credit
 * that releases 100 events, would otherwise cost 200 or 100 of each.
 */
import type { Writable } from "node:stream";

export function batchWrites(stream: Writable): void {
  if (stream.writableCorked) return;
  stream.cork();
  process.nextTick(() => stream.uncork());
}
