/**
 * The service REST API's route table: which method and path call which core operation, with which permission, on
 * which resource (for the token's scope). One entry per operation the real hub's Node SDK uses.
 */
import type { HubCore } from "../../core/hub-core";
import { queryTwins } from "../../core/query/hub-query";
import { identityPath, type Permission } from "../../core/records";
import type { Json, JsonObject } from "../../core/twin-document";
import type { IncomingHttpHeaders } from "node:http";
import { deviceRoute } from "./device-routes";
import type { RawAnswer } from "./raw-answer";
import { statisticsOrMessageRoute } from "./statistics-and-messages";

export interface Request {
  body: Json;
  /** The body as sent, for a route whose body is not JSON (`hasBody: "raw"`). */
  bytes: Buffer;
  ifMatch: string | undefined;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Header names and values as sent, names in their own case. */
  rawHeaders: string[];
  /** How the caller authenticated: a SAS token, or (device routes) its TLS client certificate. */
  authType: "sas" | "x509";
}

/** A JSON body that needs headers of its own (paging of queries, say). */
export class JsonWithHeaders {
  constructor(
    readonly json: Json,
    readonly headers: Record<string, string>,
  ) {}
}

/** What a route answers: a JSON body (200), nothing (204), a body with extra headers, or raw bytes. */
export type Answer = Json | undefined | JsonWithHeaders | RawAnswer;

export interface Route {
  needs: Permission[];
  /** The resource the operation touches, checked against the token's scope. */
  resource: string;
  /** Reads have no body to look at; "raw" bodies are not JSON (a cloud-to-device message). */
  hasBody: boolean | "raw";
  run(request: Request): Promise<Answer>;
  /** A device route: without an Authorization header, the TLS client certificate may authenticate this identity. */
  identity?: { deviceId: string; moduleId?: string };
  /** The body limit when it is not MAX_BODY_BYTES (a telemetry batch's base64). */
  maxBodyBytes?: (headers: IncomingHttpHeaders) => number;
}

const READ: Permission[] = ["RegistryRead"];
const WRITE: Permission[] = ["RegistryWrite"];
const TWIN_READ: Permission[] = ["ServiceConnect", "RegistryRead"];
const TWIN_WRITE: Permission[] = ["ServiceConnect"];

/**
 * x-ms-item-type as Azure spells it: "Twin" is recorded (azure-sdk-for-net SessionRecords
 * ModulesClient_Query_GetTwins.json); "Raw" for projections and aggregates follows the same spelling, unrecorded.
 */
const ITEM_TYPE_HEADER = { twin: "Twin", raw: "Raw" } as const;

/** Maps method and path segments to a route; undefined for an unknown path, null for a method the path lacks. */
export function route(core: HubCore, method: string, segments: string[]): Route | null | undefined {
  const device = deviceRoute(core, method, segments);
  if (device !== undefined) return device;
  const other = statisticsOrMessageRoute(core, method, segments);
  if (other !== undefined) return other;
  if (segments[0] === "twins" && segments[segments.length - 1] === "methods")
    return methodRoute(core, method, segments);
  const [collection, deviceId, sub, moduleId, ...rest] = segments;
  const { identities, twins } = core;
  if (rest.length || (sub !== undefined && sub !== "modules")) return undefined;
  const resource = deviceId === undefined ? "devices" : identityPath(deviceId, moduleId);
  const make = (needs: Permission[], hasBody: boolean, run: Route["run"]): Route => ({ needs, resource, hasBody, run });

  if (collection === "devices" && deviceId === undefined) {
    if (method === "GET") return make(READ, false, (r) => identities.listDevices(Number(r.query.get("top") ?? 1000)));
    if (method === "POST") return make(WRITE, true, (r) => core.bulk(r.body));
    return null;
  }
  if (collection === "devices" && deviceId === "query" && sub === undefined && method === "POST") {
    // Twin queries read the whole registry: RegistryRead or ServiceConnect, on the hub-wide resource.
    const run: Route["run"] = async (r) => {
      const page = await queryTwins(core, r.body, r.headers);
      const headers: Record<string, string> = { "x-ms-item-type": ITEM_TYPE_HEADER[page.itemType] };
      if (page.continuation) headers["x-ms-continuation"] = page.continuation; // absent means "last page"
      return new JsonWithHeaders(page.items, headers);
    };
    return { needs: TWIN_READ, resource: "devices", hasBody: true, run };
  }
  if (collection === "devices" && sub === undefined) {
    if (method === "GET") return make(READ, false, async () => withEtag(await identities.getDevice(deviceId)));
    if (method === "PUT")
      return make(WRITE, true, async (r) => withEtag(await identities.putDevice(deviceId, r.body, r.ifMatch)));
    if (method === "DELETE")
      return make(WRITE, false, async (r) => void (await identities.deleteDevice(deviceId, r.ifMatch)));
    return null;
  }
  if (collection === "devices" && moduleId === undefined) {
    return method === "GET" ? make(READ, false, () => identities.listModules(deviceId)) : null;
  }
  if (collection === "devices") {
    if (method === "GET") return make(READ, false, () => identities.getModule(deviceId, moduleId));
    if (method === "PUT") return make(WRITE, true, (r) => identities.putModule(deviceId, moduleId, r.body, r.ifMatch));
    if (method === "DELETE")
      return make(WRITE, false, async (r) => void (await identities.deleteModule(deviceId, moduleId, r.ifMatch)));
    return null;
  }
  if (collection === "twins" && deviceId !== undefined && (sub === undefined || moduleId !== undefined)) {
    if (method === "GET") return make(TWIN_READ, false, () => twins.get(deviceId, moduleId));
    if (method === "PATCH") return make(TWIN_WRITE, true, (r) => twins.patch(deviceId, moduleId, r.body, r.ifMatch));
    if (method === "PUT") return make(TWIN_WRITE, true, (r) => twins.replace(deviceId, moduleId, r.body, r.ifMatch));
    return null;
  }
  return undefined;
}

/**
 * Azure sends an ETag header on device answers only: not on modules, twins or lists (the SessionRecords of
 * azure-sdk-for-net, DevicesClient_DeviceTwinLifecycle.json and ModulesClient_DeviceTwinLifecycle.json).
 */
function withEtag(device: JsonObject): JsonWithHeaders {
  return new JsonWithHeaders(device, typeof device.etag === "string" ? { ETag: `"${device.etag}"` } : {});
}

/** POST /twins/{id}/methods and /twins/{id}/modules/{mid}/methods: a direct method, ServiceConnect. */
function methodRoute(core: HubCore, method: string, segments: string[]): Route | null | undefined {
  const [, deviceId, sub, moduleId] = segments;
  const forModule = segments.length === 5 && sub === "modules";
  if (segments.length !== 3 && !forModule) return undefined;
  if (method !== "POST") return null;
  const target = forModule ? moduleId : undefined;
  return {
    needs: TWIN_WRITE,
    resource: identityPath(deviceId, target),
    hasBody: true,
    run: (r) => core.methods.invoke(deviceId, target, r.body),
  };
}
