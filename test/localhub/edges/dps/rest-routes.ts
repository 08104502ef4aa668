/**
 * The provisioning service's REST routes on the hub's HTTPS port: the service API (`/enrollments`,
 * `/enrollmentGroups`, `/registrations`, api-version 2021-10-01) and the device API (`/{idScope}/registrations/...`,
 * api-version 2019-03-31). Paths IoT Hub does not have, so the two never meet.
 */
import type { DeviceCredentials } from "../../core/provisioning/attestation";
import { dpsInvalidApiVersion } from "../../core/provisioning/dps-errors";
import type { DpsRight } from "../../core/provisioning/dps-records";
import type { Provisioning } from "../../core/provisioning/provisioning";
import type { Json } from "../../core/twin-document";

/** What the service SDK sends (azure-iot-provisioning-service 1.11: 2021-10-01) and the earlier published ones. */
export const SERVICE_API_VERSIONS = new Set(["2017-11-15", "2018-04-01", "2019-03-31", "2021-10-01"]);
/** What the device SDKs send: Node, C and Python 2019-03-31; .NET and Java 2021-06-01 and later. */
export const DEVICE_API_VERSIONS = new Set(["2019-03-31", "2021-06-01", "2021-10-01", "2022-12-01"]);

const SERVICE_COLLECTIONS = new Set(["enrollments", "enrollmentgroups", "registrations"]);

export interface DpsRequest {
  body: Json;
  ifMatch: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  credentials: DeviceCredentials;
}

export interface DpsAnswer {
  status: number;
  json?: Json;
  headers?: Record<string, string>;
}

export interface DpsRoute {
  /** The service's right it needs; undefined for device routes, which attest instead. */
  needs?: DpsRight[];
  hasBody: boolean;
  run(request: DpsRequest): Promise<DpsAnswer>;
}

/** True for a path the provisioning service owns: its service collections, or `{scope}/registrations/...`. */
export function isProvisioningPath(segments: string[]): boolean {
  const first = segments[0]?.toLowerCase();
  if (first !== undefined && SERVICE_COLLECTIONS.has(first)) return true;
  return segments.length >= 3 && segments[1] === "registrations" && /^0ne[0-9A-Fa-f]{8}$/.test(segments[0]);
}

const ok = (json: Json): DpsAnswer => ({ status: 200, json });
const noContent: DpsAnswer = { status: 204 };

/** Maps method and path to a route; undefined for an unknown path, null for a method the path lacks. */
export function dpsRoute(
  dps: Provisioning,
  method: string,
  segments: string[],
  apiVersion: string,
): DpsRoute | null | undefined {
  const collection = segments[0].toLowerCase();
  if (SERVICE_COLLECTIONS.has(collection) && segments.length <= 3) {
    if (!SERVICE_API_VERSIONS.has(apiVersion)) throw dpsInvalidApiVersion();
    return serviceRoute(dps, method, collection, segments.slice(1));
  }
  if (!DEVICE_API_VERSIONS.has(apiVersion)) throw dpsInvalidApiVersion();
  return deviceRoute(dps, method, segments);
}

function serviceRoute(
  dps: Provisioning,
  method: string,
  collection: string,
  rest: string[],
): DpsRoute | null | undefined {
  const [id, sub] = rest;
  const { enrollments, registrations } = dps;
  const read = (run: DpsRoute["run"], needs: DpsRight[], hasBody = false): DpsRoute => ({ needs, hasBody, run });
  const query = (
    run: (body: Json, size: number, token: string | undefined) => Promise<{ items: Json[]; continuation?: string }>,
    needs: DpsRight[],
  ) =>
    read(
      async (r) => {
        const size = Number(header(r.headers, "x-ms-max-item-count") ?? 0);
        const page = await run(r.body, size, header(r.headers, "x-ms-continuation"));
        const headers: Record<string, string> = {};
        if (page.continuation) headers["x-ms-continuation"] = page.continuation;
        return { status: 200, json: page.items, headers };
      },
      needs,
      true,
    );
  if (collection === "registrations") {
    if (id === undefined) return undefined;
    if (sub === "query") {
      return method === "POST"
        ? query((b, s, t) => registrations.queryGroup(id, b, s, t), ["RegistrationStatusRead"])
        : null;
    }
    if (sub !== undefined) return undefined;
    if (method === "GET") return read(async () => ok(await registrations.get(id)), ["RegistrationStatusRead"]);
    if (method === "DELETE")
      return read(async (r) => (await registrations.delete(id, r.ifMatch), noContent), ["RegistrationStatusWrite"]);
    return null;
  }
  const kind = collection === "enrollments" ? "enrollment" : "enrollment-group";
  if (id === undefined) {
    if (kind === "enrollment" && method === "POST")
      return read(async (r) => ok(await enrollments.bulk(r.body)), ["EnrollmentWrite"], true);
    return null;
  }
  if (id === "query" && sub === undefined && method === "POST") {
    return query((b, s, t) => enrollments.query(kind, b, s, t), ["EnrollmentRead"]);
  }
  if (sub === "attestationmechanism") {
    if (method !== "POST") return null;
    return read(async () => ok((await enrollments.get(kind, id)).attestation), ["EnrollmentWrite"]);
  }
  if (sub !== undefined) return undefined;
  if (method === "GET") {
    return read(
      async () => ok(kind === "enrollment" ? await dps.getEnrollment(id) : await enrollments.get(kind, id)),
      ["EnrollmentRead"],
    );
  }
  if (method === "PUT")
    return read(async (r) => ok(await enrollments.put(kind, id, r.body, r.ifMatch)), ["EnrollmentWrite"], true);
  if (method === "DELETE")
    return read(async (r) => (await enrollments.delete(kind, id, r.ifMatch), noContent), ["EnrollmentWrite"]);
  return null;
}

function deviceRoute(dps: Provisioning, method: string, segments: string[]): DpsRoute | null | undefined {
  const [scope, , registrationId, action, operationId, ...rest] = segments;
  if (rest.length) return undefined;
  if (action === "register" && operationId === undefined) {
    if (method !== "PUT") return null;
    return {
      hasBody: true,
      run: async (r) => {
        const operation = await dps.register(scope, registrationId, r.body, r.credentials);
        return {
          status: 202,
          json: { ...operation },
          headers: { "retry-after": String(dps.retryAfterSeconds) },
        };
      },
    };
  }
  if (action === "operations" && operationId !== undefined) {
    if (method !== "GET") return null;
    return {
      hasBody: false,
      run: async (r) => {
        const operation = await dps.operation(scope, registrationId, operationId, r.credentials);
        return { status: 200, json: { ...operation } };
      },
    };
  }
  if (action === undefined) {
    if (method !== "POST") return null;
    return { hasBody: true, run: async (r) => ok(await dps.status(scope, registrationId, r.credentials)) };
  }
  return undefined;
}

function header(headers: DpsRequest["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
