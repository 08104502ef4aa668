/**
 * The local portal: a web page on its own loopback port, plain HTTP (see the hub's README: the browser does not
 * trust the hub's CA, and http://127.0.0.1 is a secure context anyway), guarded by a token printed in its URL as
 * Jupyter does; the first visit trades it for a cookie. Static page and script, a JSON API, server-sent events.
 */
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { FaultError } from "../../core/faults";
import { HubError } from "../../core/errors";
import { LOOPBACK, PortError, closeServer, listen } from "../../listeners";
import { BodyError, readJsonBody } from "../admin/bounded-body";
import { HealthInfo, isHealthRequest, serveHealth } from "../health";
import { PortalContext, runApi } from "./api";
import { LiveFeed } from "./live";

/** Where the portal listens unless told otherwise; when it is taken, any free port (the URL printed says which). */
export const DEFAULT_PORTAL_PORT = 8090;
/** A request body: a twin's tags and desired properties (8 + 32 KB) or a C2D message (64 KB), with room for JSON. */
export const MAX_PORTAL_BODY_BYTES = 96 * 1024;
/** Connections at once (a browser opens about six); more wait in the kernel's queue. */
export const MAX_PORTAL_CONNECTIONS = 64;
/** Headers must arrive within this; a request's body within the request timeout. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

const STATIC: Record<string, [string, string]> = {
  "/": ["index.html", "text/html; charset=utf-8"],
  "/app.js": ["app.js", "text/javascript; charset=utf-8"],
  "/app.css": ["app.css", "text/css; charset=utf-8"],
  "/favicon.ico": ["favicon.svg", "image/svg+xml"],
};
const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  // The token is in the first URL: never send it on as a referrer.
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

const digest = (text: string) => createHash("sha256").update(text).digest();

export class PortalEdge {
  readonly token = randomBytes(24).toString("base64url");
  readonly listening: string[] = [];
  port = 0;
  private readonly servers: http.Server[] = [];
  private readonly files = new Map<string, Buffer>();
  private context: PortalContext | undefined;
  private live: LiveFeed | undefined;

  constructor(
    private readonly log: (line: string) => void,
    private readonly health: () => HealthInfo | undefined,
  ) {
    for (const [file] of Object.values(STATIC)) {
      this.files.set(file, fs.readFileSync(path.join(__dirname, "static", file)));
    }
  }

  /** The URL to open: it carries the token. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/?token=${this.token}`;
  }

  /** Binds 127.0.0.1 and ::1; without a port, the default or, where that is taken, a free one. */
  async listen(port?: number): Promise<void> {
    this.port = port ?? DEFAULT_PORTAL_PORT;
    for (const address of LOOPBACK) {
      const server = http.createServer(
        { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS },
        (req, res) => {
          this.handle(req, res).catch((err) => {
            this.log(`PORTAL request failed: ${String(err)}`);
            res.destroy();
          });
        },
      );
      server.maxConnections = MAX_PORTAL_CONNECTIONS;
      this.servers.push(server);
      let bound: boolean;
      try {
        bound = await listen(server, this.port, address);
      } catch (err) {
        if (!(port === undefined && address === LOOPBACK[0] && err instanceof PortError && err.code === "EADDRINUSE")) {
          throw err;
        }
        this.port = 0;
        bound = await listen(server, 0, address);
      }
      if (!bound) continue;
      this.port = (server.address() as net.AddressInfo).port;
      this.listening.push(`http://${address.includes(":") ? `[${address}]` : address}:${this.port}`);
    }
  }

  /** From now on the API answers (until then: 503). */
  serve(context: PortalContext): void {
    this.context = context;
    this.live = new LiveFeed(context, this.log);
  }

  async stop(): Promise<void> {
    this.live?.closeAll();
    await Promise.all(this.servers.map((server) => (server.closeAllConnections(), closeServer(server))));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://portal");
    // A page elsewhere may resolve its own name to 127.0.0.1 (DNS rebinding): only our own names are served.
    const host = req.headers.host ?? "";
    if (![`127.0.0.1:${this.port}`, `localhost:${this.port}`, `[::1]:${this.port}`].includes(host)) {
      req.resume();
      return void res.writeHead(403, { "Content-Type": "text/plain" }).end("This host name is not served.");
    }
    if (isHealthRequest(req)) return serveHealth(req, res, this.context ? this.health() : undefined);

    const cookieName = `localhub_portal_${this.port}`;
    const fromQuery = url.searchParams.get("token");
    if (fromQuery !== null && this.matches(fromQuery)) {
      req.resume();
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        "Set-Cookie": `${cookieName}=${this.token}; HttpOnly; SameSite=Strict; Path=/`,
        Location: "/",
      });
      return void res.end();
    }
    if (!this.matches(cookieOf(req, cookieName) ?? "")) {
      req.resume();
      res.writeHead(401, { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8" });
      return void res.end("Open the portal with the URL that npm run hub printed: it carries ?token=...\n");
    }

    const file = STATIC[url.pathname];
    if (file && req.method === "GET") {
      req.resume();
      res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": file[1] });
      return void res.end(this.files.get(file[0]));
    }
    if (!url.pathname.startsWith("/api/")) {
      req.resume();
      return void res.writeHead(404, SECURITY_HEADERS).end();
    }
    if (!this.context || !this.live) {
      req.resume();
      return void res.writeHead(503, SECURITY_HEADERS).end();
    }
    if (url.pathname === "/api/events" && req.method === "GET") return this.live.attach(req, res, url.searchParams);
    await this.api(req, res, url, host);
  }

  private async api(req: http.IncomingMessage, res: http.ServerResponse, url: URL, host: string): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? "GET";
    let status = 200;
    let answer: unknown;
    try {
      if (method !== "GET") {
        // Writes come from our own page only: same origin, JSON (a form on another site can send neither).
        const origin = req.headers.origin;
        if (origin !== undefined && origin !== `http://${host}`) throw new HubError(403, "Forbidden", "cross-origin");
        if (method !== "DELETE" && !(req.headers["content-type"] ?? "").startsWith("application/json")) {
          throw new HubError(415, "UnsupportedMediaType", "the body must be application/json");
        }
      }
      const body =
        method === "GET" || method === "DELETE" ? (req.resume(), {}) : await readJsonBody(req, MAX_PORTAL_BODY_BYTES);
      let segments: string[];
      try {
        segments = url.pathname.slice("/api/".length).split("/").filter(Boolean).map(decodeURIComponent);
      } catch {
        throw new HubError(400, "ArgumentInvalid", "the path is not valid URL encoding");
      }
      answer = (await runApi(this.context!, { method, segments, query: url.searchParams, body })) ?? { ok: true };
    } catch (err) {
      req.resume();
      const known = err instanceof HubError || err instanceof BodyError;
      status = err instanceof HubError || err instanceof BodyError ? err.status : err instanceof FaultError ? 400 : 500;
      const message = known || err instanceof FaultError ? err.message : "the portal failed to handle the request";
      if (status === 500) this.log(`PORTAL internal error on ${method} ${url.pathname}: ${String(err)}`);
      answer = { error: message, ...(err instanceof HubError ? { code: err.code } : {}) };
    }
    res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(answer));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.log(`PORTAL ${method} ${url.pathname} ${status} ${ms.toFixed(1)}ms`);
  }

  /** Constant-time comparison of a presented token with ours (hashed first, so lengths never differ). */
  private matches(presented: string): boolean {
    return timingSafeEqual(digest(presented), digest(this.token));
  }
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}
