/**
 * `GET /health`, for scripts and container checks: no authentication, 200 with a small JSON once the hub is ready
 * (which edges listen where, the state directory, uptime), 503 while it is still starting. Served on the HTTPS port
 * and the portal's; IoT Hub has no such path, so it cannot shadow a real API.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export const HEALTH_PATH = "/health";

export interface HealthInfo {
  hostName: string;
  /** Listening URLs, e.g. `https://127.0.0.1:443`, `mqtts://[::1]:8883`, `amqps://...`, `http://...` (portal). */
  listening: string[];
  /** The state directory (certificates and the env file; identities and twins too unless inMemory). */
  stateDirectory: string;
  inMemory: boolean;
  startedAtMs: number;
}

/** True when the request is for the health endpoint (any query string ignored). */
export function isHealthRequest(req: IncomingMessage): boolean {
  return (req.url ?? "").split("?")[0] === HEALTH_PATH;
}

/** Answers a health request; `info` undefined means the hub is not ready yet. */
export function serveHealth(req: IncomingMessage, res: ServerResponse, info: HealthInfo | undefined): void {
  req.resume();
  const headers = { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" };
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { ...headers, Allow: "GET, HEAD" }).end(JSON.stringify({ status: "method not allowed" }));
    return;
  }
  if (!info) {
    res.writeHead(503, headers).end(JSON.stringify({ status: "starting" }));
    return;
  }
  res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : JSON.stringify(healthJson(info)));
}

/** The edges grouped by protocol: `{ https: [...], mqtt: [...], amqp: [...], portal: [...] }`. */
export function healthJson(info: HealthInfo) {
  const names: Record<string, string> = { https: "https", mqtts: "mqtt", amqps: "amqp", http: "portal" };
  const edges: Record<string, string[]> = {};
  for (const url of info.listening) {
    const name = names[url.split(":")[0]] ?? url.split(":")[0];
    (edges[name] ??= []).push(url);
  }
  return {
    status: "ready",
    hostName: info.hostName,
    edges,
    stateDirectory: info.stateDirectory,
    inMemory: info.inMemory,
    uptimeSeconds: Math.round((Date.now() - info.startedAtMs) / 100) / 10,
  };
}
