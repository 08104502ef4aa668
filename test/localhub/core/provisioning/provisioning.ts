/**
 * The Device Provisioning Service inside the hub: its settings (ID scope and its own access policies, made on first
 * start and kept), enrollments, registrations, and the one entry a device's register call goes through. The DPS edges
 * (edges/dps/) call it; it reaches the hub's registry and twins only through the core's own classes.
 */
import { X509Certificate, randomBytes } from "node:crypto";
import type { Store } from "../../store/store";
import type { OAuthMode } from "../bearer";
import type { Durability } from "../durability";
import type { Identities } from "../identities";
import { generateKey } from "../policies";
import type { StoredRecord } from "../records";
import type { Twins } from "../twins";
import type { Json, JsonObject } from "../twin-document";
import { DeviceCredentials, attest } from "./attestation";
import { OWNER_RIGHTS, authorizeService } from "./dps-auth";
import { dpsNotFound } from "./dps-errors";
import { DPS_SETTINGS_KEY, DpsRight, DpsSettings } from "./dps-records";
import { checkRegistrationId } from "./enrollment-fields";
import { Enrollments } from "./enrollments";
import { Operation, REGISTRATION_RETRY_AFTER_SECONDS, Registrations } from "./registrations";

export const PROVISIONING_OWNER_POLICY = "provisioningserviceowner";

/** Azure's ID scopes read `0ne` and 8 hexadecimal digits, e.g. `0ne00012345`. */
const newIdScope = (): string => `0ne${randomBytes(4).toString("hex").toUpperCase()}`;

export class Provisioning {
  readonly enrollments: Enrollments;
  readonly registrations: Registrations;
  private readonly settings: DpsSettings;
  /** The hub's client CAs by file name without extension, for groups that name one in `caReferences`. */
  private clientCas = new Map<string, X509Certificate>();
  /** What an `assigning` answer tells the device to wait before it polls, in whole seconds (HubOptions). */
  retryAfterSeconds = REGISTRATION_RETRY_AFTER_SECONDS;

  constructor(
    store: Store<StoredRecord>,
    durability: Durability,
    identities: Identities,
    twins: Twins,
    readonly hostName: string,
  ) {
    const stored = store.entries.get(DPS_SETTINGS_KEY) as DpsSettings | undefined;
    this.settings = stored ?? {
      kind: "dps-settings",
      idScope: newIdScope(),
      policies: [
        {
          keyName: PROVISIONING_OWNER_POLICY,
          primaryKey: generateKey(),
          secondaryKey: generateKey(),
          rights: OWNER_RIGHTS,
        },
      ],
    };
    if (!stored) store.put(DPS_SETTINGS_KEY, this.settings);
    this.enrollments = new Enrollments(store, durability, hostName);
    this.registrations = new Registrations(store, durability, identities, twins, hostName);
  }

  /** hub.ts hands over the certificates of DIR/client-cas/ it read at start. */
  useClientCas(cas: Map<string, X509Certificate>): void {
    this.clientCas = cas;
  }

  get idScope(): string {
    return this.settings.idScope;
  }

  /** `HostName=...;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=...` for ProvisioningServiceClient. */
  get connectionString(): string {
    const owner = this.settings.policies.find((p) => p.keyName === PROVISIONING_OWNER_POLICY)!;
    return `HostName=${this.hostName};SharedAccessKeyName=${owner.keyName};SharedAccessKey=${owner.primaryKey}`;
  }

  authorizeService(header: string | undefined, needs: DpsRight[], oauth?: OAuthMode): void {
    authorizeService(this.settings.policies, this.hostName, header, needs, oauth);
  }

  /** True when `scope` is this service's ID scope (case-insensitively, as Azure reads it). */
  isIdScope(scope: string): boolean {
    return scope.toLowerCase() === this.settings.idScope.toLowerCase();
  }

  /** Throws unless the device proves an enrollment: what MQTT and AMQP check when the device connects. */
  checkDevice(idScope: string, registrationId: string, credentials: DeviceCredentials): void {
    this.attest(idScope, registrationId, credentials);
  }

  /** PUT /{scope}/registrations/{id}/register, MQTT iotdps-register, AMQP register: attest, then assign. */
  async register(
    idScope: string,
    registrationId: string,
    body: Json,
    credentials: DeviceCredentials,
  ): Promise<Operation> {
    const attested = this.attest(idScope, registrationId, credentials);
    return this.registrations.register(attested.registeredAs, body, attested.attested);
  }

  async operation(
    idScope: string,
    registrationId: string,
    operationId: string,
    credentials: DeviceCredentials,
  ): Promise<Operation> {
    const { registeredAs } = this.attest(idScope, registrationId, credentials);
    return this.registrations.operation(registeredAs, operationId);
  }

  /** POST /{scope}/registrations/{id}: the device's own registration state. */
  async status(idScope: string, registrationId: string, credentials: DeviceCredentials): Promise<JsonObject> {
    const { registeredAs } = this.attest(idScope, registrationId, credentials);
    return this.registrations.get(registeredAs);
  }

  /** An individual enrollment with its registration state, as the service answers it once the device registered. */
  async getEnrollment(registrationId: string): Promise<JsonObject> {
    const json = await this.enrollments.get("enrollment", registrationId);
    const state = this.registrations.find(registrationId)?.json;
    return state ? { ...json, registrationState: state } : json;
  }

  private attest(idScope: string, registrationId: string, credentials: DeviceCredentials) {
    if (!this.isIdScope(idScope)) throw dpsNotFound(`No provisioning service has the ID scope '${idScope}'`);
    checkRegistrationId(registrationId);
    const attested = attest(this.enrollments, this.settings.idScope, registrationId, credentials, () => this.clientCas);
    return { attested, registeredAs: registrationId };
  }
}
