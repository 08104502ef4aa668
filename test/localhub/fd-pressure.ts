/**
 * When file descriptors run short, the connections that have not yet said who they are (no MQTT CONNECT, no HTTP
 * request) are closed first, oldest first, so that a valid client can still be accepted and served.
 */
import * as fs from "node:fs";
import type * as net from "node:net";

/** Descriptors kept free for the journal, the event log, the TLS handshakes under way and the next valid client. */
export const FD_RESERVE = 64;
/** Connections closed at once when descriptors run short: one log line per batch, not per connection. */
export const FD_SHED_BATCH = 16;

/** The process's soft limit on open files (`ulimit -n`), or Infinity where the system does not say (not Linux). */
export function softFdLimit(): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"));
    return match ? Number(match[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

function openFdCount(): number | undefined {
  try {
    return fs.readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

export class ConnectionShedder {
  /** Sockets that have not identified themselves yet, oldest first (a Set keeps insertion order). */
  private readonly pending = new Set<net.Socket>();
  private open = 0;

  constructor(
    private readonly log: (line: string) => void,
    private readonly fdLimit = softFdLimit(),
    private readonly reserve = FD_RESERVE,
  ) {}

  /** Counts a listening server's connections; call after it listens (its bind errors are listen()'s to report). */
  watch(server: net.Server): void {
    server.on("connection", (socket: net.Socket) => {
      this.open++;
      this.pending.add(socket);
      socket.once("close", () => {
        this.open--;
        this.pending.delete(socket);
      });
      this.relieve();
    });
    // An HTTPS client identifies itself with its first request (or WebSocket upgrade).
    server.on("request", (req: { socket: unknown }) => this.established(req.socket));
    server.on("upgrade", (req: { socket: unknown }) => this.established(req.socket));
    // Without a listener, an accept that fails for want of descriptors would crash the hub.
    server.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EMFILE" || err.code === "ENFILE") this.shed(FD_SHED_BATCH, `${err.code} on accept`);
      else this.log(`listener error: ${err.message}`);
    });
  }

  /** The client said who it is (a request, an MQTT CONNECT accepted): it is no longer among the first to go. */
  established(stream: unknown): void {
    // A TLS socket wraps the TCP socket the server counted.
    const socket = (stream as { _parent?: unknown } | undefined)?._parent ?? stream;
    this.pending.delete(socket as net.Socket);
  }

  private relieve(): void {
    const room = this.fdLimit - this.reserve;
    if (!Number.isFinite(room) || this.open < room / 2) return; // far from the limit: no need to count
    const used = openFdCount() ?? this.open;
    if (used > room) this.shed(used - room + FD_SHED_BATCH, `${used} of ${this.fdLimit} file descriptors in use`);
  }

  private shed(count: number, why: string): void {
    let closed = 0;
    for (const socket of this.pending) {
      if (closed >= count) break;
      this.pending.delete(socket);
      socket.destroy();
      closed++;
    }
    this.log(`file descriptors short (${why}): closed ${closed} connections that had sent no CONNECT or request`);
  }
}
