/**
 * The service REST edge (HTTPS): route, authenticate, read the body, call the registry, wait until the change is
 * durable, answer in the hub's JSON and error format. One log line per request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { authenticate, authorize } from "../../core/sas";
import { HubError, badRequest } from "../../core/errors";
import type { Permission, Registry } from "../../core/registry";
import type { Json } from "../../core/twin-document";

const MAX_BODY_BYTES = 256 * 1024;
const JSON_TYPE = "application/json; charset=utf-8";

interface Route {
  deviceId?: string;
  moduleId?: string;
  needs: Permission[];
  write: boolean;
  run(body: Json, ifMatch: string | undefined, query: URLSearchParams): Json | undefined;
}

const READ: Permission[] = ["RegistryRead"];
const WRITE: Permission[] = ["RegistryWrite"];
const TWIN_READ: Permission[] = ["ServiceConnect", "RegistryRead"];
const TWIN_WRITE: Permission[] = ["ServiceConnect"];

/** Maps method and path to what the registry must do; undefined for an unknown path, null for a wrong method. */
function route(registry: Registry, method: string, segments: string[]): Route | null | undefined {
  const [collection, deviceId, sub, moduleId, ...rest] = segments;
  if (rest.length || (sub !== undefined && sub !== "modules")) return undefined;
  const make = (needs: Permission[], write: boolean, run: Route["run"]): Route => ({
    deviceId,
    moduleId,
    needs,
    write,
    run,
  });

  if (collection === "devices" && deviceId === undefined) {
    if (method === "GET") return make(READ, false, (_b, _m, q) => registry.listDevices(Number(q.get("top") ?? 1000)));
    if (method === "POST") return make(WRITE, true, (body) => registry.bulk(body));
    return null;
  }
  if (collection === "devices" && sub === undefined) {
    if (method === "GET") return make(READ, false, () => registry.getDevice(deviceId));
    if (method === "PUT") return make(WRITE, true, (body, ifMatch) => registry.putDevice(deviceId, body, ifMatch));
    if (method === "DELETE") return make(WRITE, true, (_b, ifMatch) => void registry.deleteDevice(deviceId, ifMatch));
    return null;
  }
  if (collection === "devices" && moduleId === undefined) {
    return method === "GET" ? make(READ, false, () => registry.listModules(deviceId)) : null;
  }
  if (collection === "devices") {
    if (method === "GET") return make(READ, false, () => registry.getModule(deviceId, moduleId));
    if (method === "PUT")
      return make(WRITE, true, (body, ifMatch) => registry.putModule(deviceId, moduleId, body, ifMatch));
    if (method === "DELETE")
      return make(WRITE, true, (_b, ifMatch) => void registry.deleteModule(deviceId, moduleId, ifMatch));
    return null;
  }
  if (collection === "twins" && deviceId !== undefined && (sub === undefined || moduleId !== undefined)) {
    if (method === "GET") return make(TWIN_READ, false, () => registry.getTwin(deviceId, moduleId));
    if (method === "PATCH")
      return make(TWIN_WRITE, true, (body, ifMatch) => registry.patchTwin(deviceId, moduleId, body, ifMatch));
    if (method === "PUT")
      return make(TWIN_WRITE, true, (body, ifMatch) => registry.replaceTwin(deviceId, moduleId, body, ifMatch));
    return null;
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
      reject(new HubError(413, "RequestEntityTooLarge", `The request body is larger than ${MAX_BODY_BYTES} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HubError(413, "RequestEntityTooLarge", `The request body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseJson(text: string): Json {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw badRequest("The request body is not valid JSON");
  }
}

export function createRestHandler(registry: Registry, log: (line: string) => void) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const trackingId = randomUUID();
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "https://localhost");
    let status = 500;
    try {
      let segments: string[];
      try {
        segments = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
      } catch {
        throw badRequest("The path is not valid URL encoding");
      }
      const target = route(registry, method, segments);
      if (target === undefined) throw new HubError(404, "NotFound", `No such resource: ${method} ${url.pathname}`);
      if (target === null) throw new HubError(405, "MethodNotAllowed", `${method} is not supported on ${url.pathname}`);
      const principal = authenticate(registry, req.headers.authorization);
      authorize(principal, target.needs, target);
      if (!target.write) req.resume(); // a read has no body to look at; drain whatever was sent
      const body = target.write ? parseJson(await readBody(req)) : {};
      const ifMatch = req.headers["if-match"];
      const result = target.run(body, typeof ifMatch === "string" ? ifMatch : undefined, url.searchParams);
      // Acknowledge only what is on disk.
      await registry.store.sync();
      if (result === undefined) {
        status = 204;
        res.writeHead(204, { "iothub-tracking-id": trackingId }).end();
      } else {
        status = 200;
        const etag = typeof result === "object" && result !== null && !Array.isArray(result) ? result.etag : undefined;
        res.writeHead(200, {
          "Content-Type": JSON_TYPE,
          "iothub-tracking-id": trackingId,
          ...(typeof etag === "string" ? { ETag: `"${etag}"` } : {}),
        });
        res.end(JSON.stringify(result));
      }
    } catch (err) {
      const hubError =
        err instanceof HubError ? err : new HubError(500, "ServerError", "The local hub failed to handle the request");
      if (!(err instanceof HubError))
        log(`internal error on ${method} ${url.pathname}: ${(err as Error)?.stack ?? err}`);
      status = hubError.status;
      if (!res.headersSent) {
        res.writeHead(status, {
          "Content-Type": JSON_TYPE,
          "iothub-errorcode": hubError.code,
          "iothub-tracking-id": trackingId,
        });
        res.end(hubError.toRestBody(trackingId));
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log(`${method} ${url.pathname} ${status} ${ms.toFixed(1)}ms`);
    }
  };
}
