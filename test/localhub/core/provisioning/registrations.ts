/**
 * Device registration: a device proves itself (attestation.ts), the service assigns it to the hub, which creates or
 * updates its identity there with the enrollment's capabilities and initial twin (as Azure does), and records its
 * registration state. The identity and the state are durable before the device hears `assigning`; the operation it
 * then polls is the state's last one, so a poll after a restart of the hub still finds it.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { Store } from "../../store/store";
import type { Durability } from "../durability";
import { etagMatches } from "../etags";
import type { Identities } from "../identities";
import type { StoredRecord } from "../records";
import type { Twins } from "../twins";
import { Json, JsonObject, isObject } from "../twin-document";
import { Attested } from "./attestation";
import { dpsBadRequest, dpsNotFound, dpsPreconditionFailed, dpsTooMany } from "./dps-errors";
import { RegistrationRecord, registrationKey } from "./dps-records";
import { checkRegistrationId } from "./enrollment-fields";
import { newDpsEtag, pageOf } from "./enrollments";

/** Registration states the hub keeps; the custom-allocation payload a device may send along. */
export const MAX_REGISTRATIONS = 10_000;
export const MAX_REGISTRATION_PAYLOAD_BYTES = 4 * 1024;
/**
 * What the `assigning` answer tells the device to wait before it polls, in seconds, unless HubOptions say otherwise.
 * Azure's answers usually say 3; the hub has assigned already when it answers, so 1 keeps local runs quick (and 0,
 * which the SDKs take as "poll now", keeps tests quicker still).
 */
export const REGISTRATION_RETRY_AFTER_SECONDS = 1;

export interface Operation {
  operationId: string;
  status: string;
  registrationState?: JsonObject;
}

export class Registrations {
  private readonly records = new Map<string, RegistrationRecord>();

  constructor(
    private readonly store: Store<StoredRecord>,
    private readonly durability: Durability,
    private readonly identities: Identities,
    private readonly twins: Twins,
    private readonly hostName: string,
  ) {
    for (const [key, record] of store.entries) {
      if (key.startsWith("dps:registration:")) this.records.set(key, record as RegistrationRecord);
    }
  }

  find(registrationId: string): RegistrationRecord | undefined {
    return this.records.get(registrationKey(registrationId));
  }

  /** Assigns an attested device; resolves with the operation (`assigning`) once the device and its state are durable. */
  async register(registrationId: string, body: Json, attested: Attested): Promise<Operation> {
    const payload = isObject(body) ? body.payload : undefined;
    if (payload !== undefined && Buffer.byteLength(JSON.stringify(payload)) > MAX_REGISTRATION_PAYLOAD_BYTES) {
      throw dpsBadRequest(`The registration payload is larger than ${MAX_REGISTRATION_PAYLOAD_BYTES} bytes`);
    }
    const prior = this.find(registrationId);
    if (!prior && this.records.size >= MAX_REGISTRATIONS) {
      throw dpsTooMany(`The hub holds ${MAX_REGISTRATIONS} registration states already`);
    }
    const enrollment = attested.enrollment.json;
    const now = new Date().toISOString();
    const state: JsonObject = {
      registrationId,
      createdDateTimeUtc: (prior?.json.createdDateTimeUtc as string | undefined) ?? now,
    };
    if (enrollment.provisioningStatus === "disabled") {
      Object.assign(state, { status: "disabled", lastUpdatedDateTimeUtc: now, etag: newDpsEtag() });
    } else {
      const deviceId = (enrollment.deviceId as string | undefined) ?? registrationId;
      const substatus = await this.assign(deviceId, attested, prior);
      Object.assign(state, {
        assignedHub: this.hostName,
        deviceId,
        status: "assigned",
        substatus,
        lastUpdatedDateTimeUtc: now,
        etag: newDpsEtag(),
      });
    }
    if (attested.groupId) state.enrollmentGroupId = attested.groupId;
    Object.assign(state, attested.result);
    if (payload !== undefined) state.payload = payload;
    const operationId = `5.${randomBytes(8).toString("hex")}.${randomUUID()}`;
    const record: RegistrationRecord = { kind: "registration", json: state, operationId };
    this.records.set(registrationKey(registrationId), record);
    this.store.put(registrationKey(registrationId), record);
    await this.durability.committed();
    return { operationId, status: "assigning" };
  }

  /** GET .../operations/{id}: the registration's last operation, finished (the hub assigns before it answers). */
  async operation(registrationId: string, operationId: string): Promise<Operation> {
    await this.durability.settled();
    const record = this.find(registrationId);
    if (!record || record.operationId !== operationId) {
      throw dpsNotFound(`Operation '${operationId}' of registration '${registrationId}' does not exist`);
    }
    return { operationId, status: record.json.status as string, registrationState: record.json };
  }

  async get(registrationId: string): Promise<JsonObject> {
    await this.durability.settled();
    const record = this.find(registrationId);
    if (!record) throw dpsNotFound(`The registration '${registrationId}' does not exist`);
    return record.json;
  }

  /** Deleting a registration state leaves the device in the hub, as on Azure; the device may register again. */
  async delete(registrationId: string, ifMatch: string | undefined): Promise<void> {
    checkRegistrationId(registrationId);
    const record = this.find(registrationId);
    if (!record) throw dpsNotFound(`The registration '${registrationId}' does not exist`);
    if (!etagMatches(ifMatch, record.json.etag as string))
      throw dpsPreconditionFailed(`registration ${registrationId}`);
    this.records.delete(registrationKey(registrationId));
    this.store.put(registrationKey(registrationId), null);
    await this.durability.committed();
  }

  /** POST /registrations/{groupId}/query: the registration states of one enrollment group. */
  async queryGroup(groupId: string, body: unknown, pageSize: number, continuation: string | undefined) {
    await this.durability.settled();
    const wanted = groupId.toLowerCase();
    const items = [...this.records.values()]
      .filter((r) => typeof r.json.enrollmentGroupId === "string" && r.json.enrollmentGroupId.toLowerCase() === wanted)
      .map((r) => r.json);
    return pageOf(items, body, pageSize, continuation);
  }

  /**
   * Creates the device, or, registering again, follows the reprovision policy. There is one hub, so the assignment
   * never moves: the device keeps its data unless `migrateDeviceData` is false, which resets its twin to the
   * enrollment's initial twin; `updateHubAssignment: false` leaves the identity as it is.
   */
  private async assign(deviceId: string, attested: Attested, prior: RegistrationRecord | undefined): Promise<string> {
    const enrollment = attested.enrollment.json;
    const policy = enrollment.reprovisionPolicy as { updateHubAssignment: boolean; migrateDeviceData: boolean };
    const existing = this.identities.find(deviceId);
    if (existing && prior && !policy.updateHubAssignment)
      return (prior.json.substatus as string) ?? "initialAssignment";
    const body: JsonObject = {
      deviceId,
      status: existing?.status ?? "enabled",
      authentication: attested.authentication,
      capabilities: enrollment.capabilities,
    };
    await this.identities.putDevice(deviceId, body, existing ? "*" : undefined);
    const reset = existing !== undefined && prior !== undefined && !policy.migrateDeviceData;
    const initialTwin = enrollment.initialTwin as JsonObject | undefined;
    if (!existing || reset) {
      const twin = initialTwin ?? { tags: {}, properties: { desired: {} } };
      if (!existing && initialTwin) await this.twins.replace(deviceId, undefined, twin, "*");
      if (reset) await this.twins.replace(deviceId, undefined, twin, "*");
    }
    return reset ? "deviceDataReset" : "initialAssignment";
  }
}
