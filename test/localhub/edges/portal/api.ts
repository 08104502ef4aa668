/**
 * The portal's JSON API: each call is one core operation, the same the REST, MQTT and AMQP edges use (identities,
 * twins with their etag, direct methods, the C2D queue, faults). No rule of the hub lives here.
 */
import { randomUUID } from "node:crypto";
import { HubError, badRequest } from "../../core/errors";
import type { Faults } from "../../core/faults";
import type { HubCore } from "../../core/hub-core";
import { identityKey } from "../../core/records";
import type { Json } from "../../core/twin-document";
import { applyFault, faultJson, isFaultAction } from "../admin/fault-actions";
import { recentTelemetry } from "./telemetry-feed";

/** Identities the portal lists; a registry larger than this shows its first ones and says how many there are. */
export const MAX_LISTED_IDENTITIES = 1000;

export interface PortalContext {
  core: HubCore;
  faults: Faults;
}

export interface ApiRequest {
  method: string;
  /** Path segments after `/api/`, decoded. */
  segments: string[];
  query: URLSearchParams;
  body: unknown;
}

type Body = Record<string, unknown>;

const asObject = (body: unknown): Body =>
  body && typeof body === "object" && !Array.isArray(body) ? (body as Body) : {};

function text(body: Body, name: string): string {
  const value = body[name];
  if (typeof value !== "string" || !value) throw badRequest(`"${name}" must be a non-empty string`);
  return value;
}

function optionalText(body: Body, name: string): string | undefined {
  const value = body[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw badRequest(`"${name}" must be a string`);
  return value;
}

/** Devices with their modules, status and connection state, in id order, at most MAX_LISTED_IDENTITIES. */
export function identitiesView(core: HubCore) {
  const { identities } = core;
  const modulesOf = new Map<string, { moduleId: string; connectionState: string }[]>();
  for (const module of identities.allModules()) {
    const list = modulesOf.get(module.deviceId) ?? [];
    list.push({ moduleId: module.moduleId!, connectionState: connection(core, module) });
    modulesOf.set(module.deviceId, list);
  }
  const devices = [...identities.allDevices()]
    .sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
    .slice(0, MAX_LISTED_IDENTITIES)
    .map((device) => ({
      deviceId: device.deviceId,
      status: device.status,
      connectionState: connection(core, device),
      modules: (modulesOf.get(device.deviceId) ?? []).sort((a, b) => (a.moduleId < b.moduleId ? -1 : 1)),
    }));
  return { devices, total: identities.count };
}

const connection = (core: HubCore, identity: Parameters<HubCore["identities"]["isConnected"]>[0]) =>
  core.identities.isConnected(identity) ? "Connected" : "Disconnected";

/** The identity named in the query (`device`, optional `module`). */
function target(query: URLSearchParams): { deviceId: string; moduleId: string | undefined } {
  const deviceId = query.get("device");
  if (!deviceId) throw badRequest("the query needs device= (and module= for a module)");
  return { deviceId, moduleId: query.get("module") || undefined };
}

export function connectionStrings(core: HubCore, deviceId: string, moduleId: string | undefined) {
  const identity = core.identities.require(deviceId, moduleId);
  const { primaryKey, secondaryKey } = identity.authentication.symmetricKey;
  const base = `HostName=${core.hostName};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ""}`;
  if (!primaryKey) {
    return { authentication: identity.authentication.type, primary: null, secondary: null };
  }
  return {
    authentication: identity.authentication.type,
    primary: `${base}SharedAccessKey=${primaryKey}`,
    secondary: secondaryKey ? `${base}SharedAccessKey=${secondaryKey}` : null,
  };
}

/** Runs one API call; undefined for a path the API does not have. */
export async function runApi(context: PortalContext, request: ApiRequest): Promise<unknown> {
  const { core, faults } = context;
  const { cloudToDevice, telemetry } = core;
  const { method, segments, query } = request;
  const body = asObject(request.body);
  const route = `${method} ${segments.join("/")}`;
  const [first, deviceId, sub, moduleId] = segments;

  if (route === "GET identities") return identitiesView(core);
  if (route === "POST devices") {
    const id = text(body, "deviceId");
    return core.identities.putDevice(id, { deviceId: id }, undefined);
  }
  if (first === "devices" && deviceId && segments.length === 2 && method === "DELETE") {
    return core.identities.deleteDevice(deviceId, "*");
  }
  if (first === "devices" && deviceId && sub === "modules" && segments.length === 3 && method === "POST") {
    const id = text(body, "moduleId");
    return core.identities.putModule(deviceId, id, { deviceId, moduleId: id }, undefined);
  }
  if (
    first === "devices" &&
    deviceId &&
    sub === "modules" &&
    moduleId &&
    segments.length === 4 &&
    method === "DELETE"
  ) {
    return core.identities.deleteModule(deviceId, moduleId, "*");
  }
  if (route === "GET connection-strings") {
    const { deviceId: id, moduleId: mid } = target(query);
    return connectionStrings(core, id, mid);
  }
  if (route === "GET twin") {
    const { deviceId: id, moduleId: mid } = target(query);
    return core.twins.get(id, mid);
  }
  if (route === "PUT twin") {
    // Tags and desired properties replaced whole, as the editor shows them, only if the twin is still the one read.
    const { deviceId: id, moduleId: mid } = target(query);
    const etag = text(body, "etag");
    const twin = { tags: body.tags ?? {}, properties: { desired: body.desired ?? {} } } as unknown as Json;
    return core.twins.replace(id, mid, twin, `"${etag}"`);
  }
  if (route === "POST cloud-to-device") {
    const id = text(body, "deviceId");
    const message = await cloudToDevice.enqueue(id, {
      body: Buffer.from(typeof body.body === "string" ? body.body : ""),
      messageId: optionalText(body, "messageId") ?? randomUUID(),
      properties: stringProperties(body.properties),
      // The portal learns each outcome from the queue itself ('settled'): no feedback record for the service's reader.
      ack: "none",
    });
    return { messageId: message.messageId, deviceId: id, status: "Enqueued" };
  }
  if (route === "POST methods") {
    const id = text(body, "deviceId");
    const mid = optionalText(body, "moduleId");
    const call = {
      methodName: text(body, "methodName"),
      payload: (body.payload ?? null) as Json,
      responseTimeoutInSeconds: body.responseTimeoutInSeconds ?? 30,
      connectTimeoutInSeconds: body.connectTimeoutInSeconds ?? 0,
    } as unknown as Json;
    return core.methods.invoke(id, mid, call);
  }
  if (route === "GET telemetry") return { messages: recentTelemetry(telemetry, target(query).deviceId) };
  if (route === "GET faults") return { faults: faults.list().map((state) => faultJson(state)) };
  if (route === "POST faults") {
    const id = text(body, "deviceId");
    const mid = optionalText(body, "moduleId");
    const action = text(body, "action");
    if (!isFaultAction(action)) throw badRequest(`no fault '${action}'`);
    applyFault(core, faults, id, mid, action, body);
    return { faults: faults.list().map((state) => faultJson(state)) };
  }
  if (route === "DELETE faults") {
    const { deviceId: id, moduleId: mid } = target(query);
    faults.clear(identityKey(id, mid));
    return { faults: faults.list().map((state) => faultJson(state)) };
  }
  throw new HubError(404, "NotFound", `The portal has no API ${method} /api/${segments.join("/")}`);
}

/** Application properties of a C2D message: string values only, as IoT Hub keeps them. */
function stringProperties(value: unknown): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [key, item] of Object.entries(asObject(value))) {
    if (typeof item !== "string") throw badRequest(`property '${key}' must be a string`);
    properties[key] = item;
  }
  return properties;
}
