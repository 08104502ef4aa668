/**
 * The hub's sockets: HTTPS and TLS servers on the loopback addresses, with a TLS handshake limit, and the one clear
 * error for a port that cannot be bound.
 */
import { X509Certificate } from "node:crypto";
import * as https from "node:https";
import * as net from "node:net";
import * as tls from "node:tls";

export const LOOPBACK = ["127.0.0.1", "::1"];

/** A client that opens TCP and never finishes the TLS handshake is dropped after this long. */
export const DEFAULT_TLS_HANDSHAKE_MS = 10_000;

/**
 * HTTPS request headers: 16 KB in all (Node's default, made explicit) and at most 1,000 of them, refused by the REST
 * edge. Node's own count limit is off: it drops the headers past it silently (Host among them, then answers 400),
 * and 16 KB already bounds how many fit.
 */
export const MAX_HTTP_HEADER_BYTES = 16 * 1024;
export const MAX_HTTP_HEADERS = 1000;

/** A port the hub cannot bind, with what to do about it. */
export class PortError extends Error {
  constructor(
    readonly port: number,
    readonly code: string,
  ) {
    super(
      code === "EACCES"
        ? `Cannot listen on port ${port}: ports below 1024 need privileges on Linux. Run as root, or allow it once with ` +
            "`sudo sysctl net.ipv4.ip_unprivileged_port_start=443`."
        : code === "EADDRINUSE"
          ? `Cannot listen on port ${port}: it is already in use (another local hub? \`sudo lsof -i :${port}\` shows who). Stop it and try again.`
          : `Cannot listen on port ${port}: ${code}.`,
    );
  }
}

export interface TlsMaterial {
  key: string;
  cert: string;
}

/** Certificates of a client's chain kept at most (a device sends its own and one or two intermediates). */
export const MAX_PRESENTED_CHAIN = 8;
const presentedChains = new WeakMap<tls.TLSSocket, X509Certificate[]>();

/**
 * The certificates a client sent along with its own (intermediates), as they were when its handshake completed:
 * read later, OpenSSL may no longer have them (seen with TLS 1.3), while the client's own certificate stays.
 * The provisioning service follows them to an enrollment group's CA (edges/dps/peer-certificate.ts).
 */
export function presentedChain(socket: tls.TLSSocket): X509Certificate[] {
  return presentedChains.get(socket) ?? [];
}

function rememberPresentedChain(socket: tls.TLSSocket): void {
  let current = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate | undefined;
  if (!current?.raw) return; // no client certificate: nothing to keep
  const chain: X509Certificate[] = [];
  while (current.issuerCertificate && current.issuerCertificate !== current && chain.length < MAX_PRESENTED_CHAIN) {
    current = current.issuerCertificate;
    if (current.raw) chain.push(new X509Certificate(current.raw));
  }
  if (chain.length) presentedChains.set(socket, chain);
}

/**
 * Node reports a failed or timed-out handshake (`tlsClientError`) but leaves the socket open: close it, or half-open
 * connections pile up until the process runs out of file descriptors.
 */
function dropFailedHandshakes(server: tls.Server, log: (line: string) => void): void {
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // A client that does not trust our CA aborts the handshake: its error to report. Timeouts are ours to mention.
    if (err.code === "ERR_TLS_HANDSHAKE_TIMEOUT") {
      log(`TLS handshake not finished in time: connection from ${socket.remoteAddress ?? "?"} dropped`);
    }
    socket.destroy();
  });
}

/**
 * HTTPS asks for a client certificate as 8883 does, without insisting: browsers, REST clients and SAS devices send
 * none and are served as before; X.509 devices over MQTT-over-WebSockets send theirs (edges/websocket.ts).
 */
export function createHttpsServer(
  material: TlsMaterial,
  handshakeMs: number,
  log: (line: string) => void,
  onRequest: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void,
  clientCas?: string[],
): https.Server {
  const server = https.createServer(
    {
      ...material,
      handshakeTimeout: handshakeMs,
      requestCert: true,
      rejectUnauthorized: false,
      ca: clientCas,
      maxHeaderSize: MAX_HTTP_HEADER_BYTES,
    },
    onRequest,
  );
  server.maxHeadersCount = 0;
  refuseUnparsableRequests(server, log);
  // Like Azure's load balancer, keep idle connections for minutes: the SDK reuses them (keep-alive agent), and a
  // short server timeout races with that reuse ("socket hang up").
  server.keepAliveTimeout = 240_000;
  dropFailedHandshakes(server, log);
  server.on("secureConnection", rememberPresentedChain);
  return server;
}

/** What Node answers a request it cannot parse, plus one log line when the headers were too large. */
function refuseUnparsableRequests(server: https.Server, log: (line: string) => void): void {
  const refused = new WeakSet<object>();
  server.on("clientError", (err: NodeJS.ErrnoException, socket: import("node:stream").Duplex) => {
    // Node may report one broken request more than once (each chunk that arrives after the parser failed).
    if (refused.has(socket)) return void socket.destroy();
    refused.add(socket);
    const overflow = err.code === "HPE_HEADER_OVERFLOW";
    if (overflow) log(`HTTPS request refused: its headers exceed ${MAX_HTTP_HEADER_BYTES} bytes`);
    if (socket.writable && err.code !== "ECONNRESET") {
      const status = overflow ? "431 Request Header Fields Too Large" : "400 Bad Request";
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  });
}

/**
 * The MQTT server asks for a client certificate but does not insist: SAS clients send none, X.509 devices send theirs
 * and the CONNECT handler checks it (thumbprint, or a chain to one of `clientCas`).
 */
export function createTlsServer(
  material: TlsMaterial,
  handshakeMs: number,
  log: (line: string) => void,
  onSocket: (socket: tls.TLSSocket) => void,
  clientCas?: string[],
): tls.Server {
  const server = tls.createServer(
    { ...material, handshakeTimeout: handshakeMs, requestCert: true, rejectUnauthorized: false, ca: clientCas },
    onSocket,
  );
  dropFailedHandshakes(server, log);
  server.on("secureConnection", rememberPresentedChain);
  return server;
}

/** Listens on one address; resolves false where the machine has no such address (no IPv6 loopback). */
export function listen(server: net.Server, port: number, address: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      if (address === "::1" && (err.code === "EADDRNOTAVAIL" || err.code === "EAFNOSUPPORT")) resolve(false);
      else reject(new PortError(port, err.code ?? String(err)));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve(true);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ port, host: address, ipv6Only: address === "::1" });
  });
}

/**
 * Binds `port`, or `unprivileged` when `port` is refused for lack of privileges (EACCES: Linux keeps the ports below
 * 1024 for root) and the caller names one; resolves with the port it tried last and whether it is bound there.
 */
export async function listenOrFallBack(
  server: net.Server,
  port: number,
  address: string,
  unprivileged?: number,
): Promise<{ bound: boolean; port: number }> {
  try {
    return { bound: await listen(server, port, address), port };
  } catch (err) {
    if (unprivileged === undefined || !(err instanceof PortError && err.code === "EACCES")) throw err;
    return { bound: await listen(server, unprivileged, address), port: unprivileged };
  }
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if (server instanceof https.Server) server.closeAllConnections();
  });
}
