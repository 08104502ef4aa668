/**
 * The hub's own admin REST API on the HTTPS port, under `/$localhub/` (a path IoT Hub cannot have), iothubowner only:
 *   GET    /$localhub/faults                                   the faults in force
 *   POST   /$localhub/faults/devices/{id}[/modules/{mid}]/{action}   drop | refuse-reconnects | latency | ignore-pings
 *   DELETE /$localhub/faults/devices/{id}[/modules/{mid}]      clears that identity's faults
 * Errors in the hub's format; one log line per request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { FaultError, Faults } from "../../core/faults";
import { HubError, badRequest, unauthorized } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import { authenticate } from "../../core/sas";
import { BodyError, readJsonBody } from "./bounded-body";
import { applyFault, faultJson, isFaultAction } from "./fault-actions";

export const ADMIN_PREFIX = "/$localhub/";
/** A fault's body is a few numbers. */
export const MAX_ADMIN_BODY_BYTES = 4 * 1024;

const JSON_TYPE = "application/json; charset=utf-8";

/** True for requests to the admin API (`$` may come URL-encoded). */
export function isAdminRequest(req: IncomingMessage): boolean {
  const path = (req.url ?? "").split("?")[0];
  return path.startsWith(ADMIN_PREFIX) || path.toLowerCase().startsWith("/%24localhub/");
}

export function createAdminHandler(core: HubCore, faults: Faults, log: (line: string) => void) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const method = req.method ?? "GET";
    const rawPath = (req.url ?? "/").split("?")[0].slice(0, 200);
    let status = 500;
    try {
      const principal = authenticate(core, req.headers.authorization);
      if (principal.kind !== "policy" || principal.keyName !== "iothubowner" || principal.scope) {
        throw unauthorized("The admin API (/$localhub/) takes an iothubowner token for the whole hub");
      }
      const segments = decodeSegments(rawPath);
      const answer = await route(req, method, segments, core, faults);
      status = answer === undefined ? 204 : 200;
      res.writeHead(status, answer === undefined ? {} : { "Content-Type": JSON_TYPE });
      res.end(answer === undefined ? undefined : JSON.stringify(answer));
    } catch (err) {
      const hubError =
        err instanceof HubError
          ? err
          : err instanceof FaultError
            ? badRequest(err.message)
            : err instanceof BodyError
              ? new HubError(err.status, err.status === 413 ? "RequestEntityTooLarge" : "ArgumentInvalid", err.message)
              : new HubError(500, "ServerError", "The local hub failed to handle the request");
      if (hubError.status === 500) log(`internal error on ${method} ${rawPath}: ${String(err)}`);
      status = hubError.status;
      req.resume();
      if (!res.headersSent) {
        const trackingId = randomUUID();
        res.writeHead(status, { "Content-Type": JSON_TYPE, "iothub-errorcode": hubError.code });
        res.end(hubError.toRestBody(trackingId));
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      log(`${method} ${rawPath} ${status} ${ms.toFixed(1)}ms`);
    }
  };
}

async function route(
  req: IncomingMessage,
  method: string,
  segments: string[],
  core: HubCore,
  faults: Faults,
): Promise<unknown> {
  const [, collection, devices, deviceId, ...rest] = segments;
  if (collection !== "faults") throw notFound(method, segments);
  if (devices === undefined) {
    if (method !== "GET") throw notAllowed(method);
    req.resume();
    return { faults: faults.list().map((state) => faultJson(state)) };
  }
  if (devices !== "devices" || !deviceId) throw notFound(method, segments);
  let moduleId: string | undefined;
  if (rest[0] === "modules") {
    moduleId = rest[1];
    if (!moduleId) throw notFound(method, segments);
    rest.splice(0, 2);
  }
  if (rest.length === 0) {
    if (method !== "DELETE") throw notAllowed(method);
    req.resume();
    core.identities.require(deviceId, moduleId);
    faults.clear(moduleId ? `${deviceId}/${moduleId}` : deviceId);
    return undefined;
  }
  const [action, ...extra] = rest;
  if (extra.length || !isFaultAction(action)) throw notFound(method, segments);
  if (method !== "POST") throw notAllowed(method);
  const body = await readJsonBody(req, MAX_ADMIN_BODY_BYTES);
  applyFault(core, faults, deviceId, moduleId, action, body);
  const key = moduleId ? `${deviceId}/${moduleId}` : deviceId;
  const state = faults.list().find((s) => s.key === key);
  return state ? faultJson(state) : undefined;
}

function decodeSegments(path: string): string[] {
  try {
    return path.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    throw badRequest("The path is not valid URL encoding");
  }
}

const notFound = (method: string, segments: string[]) =>
  new HubError(404, "NotFound", `No such resource: ${method} /${segments.join("/")}`);
const notAllowed = (method: string) =>
  new HubError(405, "MethodNotAllowed", `${method} is not supported on this admin path`);
