/**
 * Individual enrollments and enrollment groups: create, read, update with If-Match, delete, bulk and query, stored
 * whole in the hub's store and answered once durable. Etags are opaque and change with every write.
 */
import { randomUUID } from "node:crypto";
import type { Store } from "../../store/store";
import type { Durability } from "../durability";
import { etagMatches } from "../etags";
import type { StoredRecord } from "../records";
import { JsonObject, isObject } from "../twin-document";
import { dpsBadRequest, dpsConflict, dpsNotFound, dpsPreconditionFailed, dpsTooMany, DpsError } from "./dps-errors";
import { EnrollmentRecord, enrollmentKey, groupKey } from "./dps-records";
import {
  checkAttestation,
  checkCapabilities,
  checkDeviceId,
  checkInitialTwin,
  checkProvisioningStatus,
  checkRegistrationId,
  checkReprovisionPolicy,
} from "./enrollment-fields";

/** The local hub's bounds (Azure allows 1,000,000 enrollments and 100 groups a unit; it documents 10 per bulk call). */
export const MAX_ENROLLMENTS = 10_000;
export const MAX_ENROLLMENT_GROUPS = 100;
export const MAX_BULK_ENROLLMENTS = 10;
export const MAX_QUERY_PAGE = 100;

export type EnrollmentKind = "enrollment" | "enrollment-group";

/** Azure's etags come from its database: base64 of a quoted id, e.g. `IjE0MDAwNmYxLTAwMDAtMDcwMC0wMDAwLTVm..."`. */
export const newDpsEtag = (): string => Buffer.from(`"${randomUUID()}"`).toString("base64");

export class Enrollments {
  private readonly records = {
    enrollment: new Map<string, EnrollmentRecord>(),
    "enrollment-group": new Map<string, EnrollmentRecord>(),
  };

  constructor(
    private readonly store: Store<StoredRecord>,
    private readonly durability: Durability,
    private readonly hostName: string,
  ) {
    for (const [key, record] of store.entries) {
      if (key.startsWith("dps:enrollment:")) this.records.enrollment.set(key, record as EnrollmentRecord);
      if (key.startsWith("dps:group:")) this.records["enrollment-group"].set(key, record as EnrollmentRecord);
    }
  }

  find(kind: EnrollmentKind, id: string): EnrollmentRecord | undefined {
    return this.records[kind].get(keyOf(kind, id));
  }

  all(kind: EnrollmentKind): IterableIterator<EnrollmentRecord> {
    return this.records[kind].values();
  }

  async get(kind: EnrollmentKind, id: string): Promise<JsonObject> {
    await this.durability.settled();
    const record = this.find(kind, id);
    if (!record) throw notFound(kind, id);
    return record.json;
  }

  /** PUT: create (409 if it exists and no If-Match came) or replace (If-Match etag or `*`). */
  async put(kind: EnrollmentKind, id: string, body: unknown, ifMatch: string | undefined): Promise<JsonObject> {
    const record = this.apply(kind, id, body, ifMatch);
    await this.durability.committed();
    return record.json;
  }

  async delete(kind: EnrollmentKind, id: string, ifMatch: string | undefined): Promise<void> {
    this.applyDelete(kind, id, ifMatch);
    await this.durability.committed();
  }

  /** POST /enrollments: up to 10 individual enrollments, each one succeeding or failing on its own. */
  async bulk(body: unknown): Promise<JsonObject> {
    if (!isObject(body) || !Array.isArray(body.enrollments))
      throw dpsBadRequest("the body must be {mode, enrollments: [...]}");
    const { mode, enrollments } = body;
    if (mode !== "create" && mode !== "update" && mode !== "updateIfMatchEtag" && mode !== "delete") {
      throw dpsBadRequest("mode must be create, update, updateIfMatchEtag or delete");
    }
    if (enrollments.length > MAX_BULK_ENROLLMENTS)
      throw dpsBadRequest(`at most ${MAX_BULK_ENROLLMENTS} enrollments per bulk operation`);
    const errors: JsonObject[] = [];
    for (const enrollment of enrollments) {
      const id = isObject(enrollment) && typeof enrollment.registrationId === "string" ? enrollment.registrationId : "";
      const etag = isObject(enrollment) && typeof enrollment.etag === "string" ? enrollment.etag : undefined;
      try {
        if (mode === "delete") this.applyDelete("enrollment", id, etag);
        else if (mode === "create") this.apply("enrollment", id, enrollment, undefined);
        else this.apply("enrollment", id, enrollment, mode === "update" ? "*" : (etag ?? '""'));
      } catch (err) {
        if (!(err instanceof DpsError)) throw err;
        errors.push({ registrationId: id, errorCode: err.errorCode, errorStatus: err.message });
      }
    }
    await this.durability.committed();
    return { isSuccessful: errors.length === 0, errors };
  }

  /** POST .../query: only `*` / `SELECT * FROM ...` (every item), in pages, continuation as an offset. */
  async query(kind: EnrollmentKind, body: unknown, pageSize: number, continuation: string | undefined) {
    await this.durability.settled();
    const items = [...this.records[kind].values()].map((r) => r.json);
    return pageOf(items, body, pageSize, continuation);
  }

  private apply(kind: EnrollmentKind, id: string, body: unknown, ifMatch: string | undefined): EnrollmentRecord {
    const idField = kind === "enrollment" ? "registrationId" : "enrollmentGroupId";
    checkRegistrationId(id, idField);
    if (!isObject(body)) throw dpsBadRequest("the body must be an enrollment JSON object");
    if (typeof body[idField] === "string" && body[idField].toLowerCase() !== id.toLowerCase()) {
      throw dpsBadRequest(`${idField} in the body differs from the path`);
    }
    const existing = this.find(kind, id);
    if (existing && ifMatch === undefined) throw dpsConflict(`The ${describe(kind)} '${id}' already exists`);
    if (existing && !etagMatches(ifMatch, existing.json.etag as string))
      throw dpsPreconditionFailed(`${describe(kind)} ${id}`);
    if (!existing && ifMatch !== undefined && ifMatch.trim() !== "*") throw notFound(kind, id);
    const limit = kind === "enrollment" ? MAX_ENROLLMENTS : MAX_ENROLLMENT_GROUPS;
    if (!existing && this.records[kind].size >= limit)
      throw dpsTooMany(`The hub holds ${limit} ${describe(kind)}s already`);
    const attestation = checkAttestation(body.attestation, kind === "enrollment" ? "individual" : "group");
    const now = new Date().toISOString();
    const json: JsonObject = { [idField]: existing ? existing.json[idField] : id };
    if (kind === "enrollment") {
      const deviceId = checkDeviceId(body.deviceId);
      if (deviceId) json.deviceId = deviceId;
    }
    json.attestation = attestation.json;
    json.capabilities = checkCapabilities(body.capabilities);
    json.iotHubHostName = this.hostName;
    const initialTwin = checkInitialTwin(body.initialTwin);
    if (initialTwin) json.initialTwin = initialTwin;
    json.etag = newDpsEtag();
    json.provisioningStatus = checkProvisioningStatus(body.provisioningStatus);
    json.reprovisionPolicy = { ...checkReprovisionPolicy(body.reprovisionPolicy) };
    json.createdDateTimeUtc = existing ? existing.json.createdDateTimeUtc : now;
    json.lastUpdatedDateTimeUtc = now;
    json.allocationPolicy = checkAllocationPolicy(body.allocationPolicy);
    json.iotHubs = [this.hostName];
    const record: EnrollmentRecord = {
      kind,
      json,
      ...(attestation.certificates ? { certificates: attestation.certificates } : {}),
    };
    const key = keyOf(kind, id);
    this.records[kind].set(key, record);
    this.store.put(key, record);
    return record;
  }

  private applyDelete(kind: EnrollmentKind, id: string, ifMatch: string | undefined): void {
    const record = this.find(kind, id);
    if (!record) throw notFound(kind, id);
    if (!etagMatches(ifMatch, record.json.etag as string)) throw dpsPreconditionFailed(`${describe(kind)} ${id}`);
    const key = keyOf(kind, id);
    this.records[kind].delete(key);
    this.store.put(key, null);
  }
}

/** Every policy but custom picks among the linked hubs, and there is one: this hub. Custom needs a webhook. */
function checkAllocationPolicy(value: unknown): string {
  if (value === undefined || value === null) return "hashed";
  if (value === "hashed" || value === "geoLatency" || value === "static") return value;
  if (value === "custom") throw dpsBadRequest("allocationPolicy 'custom' (a webhook) is not served by the local hub");
  throw dpsBadRequest("allocationPolicy must be 'hashed', 'geoLatency', 'static' or 'custom'");
}

const keyOf = (kind: EnrollmentKind, id: string) => (kind === "enrollment" ? enrollmentKey(id) : groupKey(id));
const describe = (kind: EnrollmentKind) => (kind === "enrollment" ? "enrollment" : "enrollment group");
const notFound = (kind: EnrollmentKind, id: string) => dpsNotFound(`The ${describe(kind)} '${id}' does not exist`);

/** One page of a query over `items`; the continuation token is the next offset, present only while more remain. */
export function pageOf(items: JsonObject[], body: unknown, pageSize: number, continuation: string | undefined) {
  const text = isObject(body) && typeof body.query === "string" ? body.query.trim() : "";
  if (text !== "*" && !/^select\s+\*\s+from\s+[\w/]+$/i.test(text)) {
    throw dpsBadRequest("the local hub's provisioning queries are '*' or 'SELECT * FROM <collection>' only (no WHERE)");
  }
  const size = Number.isInteger(pageSize) && pageSize > 0 ? Math.min(pageSize, MAX_QUERY_PAGE) : MAX_QUERY_PAGE;
  const start = continuation === undefined ? 0 : Number(Buffer.from(continuation, "base64").toString());
  if (!Number.isSafeInteger(start) || start < 0) throw dpsBadRequest("x-ms-continuation is not one the hub gave");
  const page = items.slice(start, start + size);
  const next = start + size < items.length ? Buffer.from(String(start + size)).toString("base64") : undefined;
  return { items: page, continuation: next };
}
