/**
 * The hub's core: the identity registry (devices, modules, their keys and etags), their twins, and the shared access
 * policies. Both protocol edges (rest.ts, mqtt.ts) call into it; it knows nothing of HTTP or MQTT. Every change is
 * handed to the store before the method returns; the edges await `store.sync()` before they acknowledge it.
 */
import { EventEmitter } from "node:events";
import { randomBytes, randomUUID } from "node:crypto";
import { HubError, badRequest, deviceNotFound, moduleNotFound, preconditionFailed } from "./errors";
import type { Store } from "../store/journal";
import {
  Json,
  JsonObject,
  TwinState,
  deviceView,
  isObject,
  newTwin,
  patchProperties,
  patchTags,
  replaceProperties,
  replacementPatch,
  serviceView,
} from "./twin-document";

export type Permission = "RegistryRead" | "RegistryWrite" | "ServiceConnect" | "DeviceConnect";

export interface Policy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: Permission[];
}

export interface SymmetricKeys {
  primaryKey: string;
  secondaryKey: string;
}

export interface Identity {
  deviceId: string;
  moduleId?: string;
  generationId: string;
  etag: string;
  managedBy?: string;
  status?: "enabled" | "disabled";
  statusReason?: string | null;
  statusUpdatedTime: string;
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  capabilities?: { iotEdge: boolean };
  authentication: {
    type: string;
    symmetricKey: SymmetricKeys;
    x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  };
  twin: TwinState;
}

/** A record in the store: an identity with its twin, the list of policies, or an MQTT session's subscriptions. */
export type StoredRecord = Identity | Policy[] | string[];

export const DEFAULT_POLICY_RIGHTS: Record<string, Permission[]> = {
  iothubowner: ["RegistryWrite", "ServiceConnect", "DeviceConnect"],
  service: ["ServiceConnect"],
  device: ["DeviceConnect"],
  registryRead: ["RegistryRead"],
  registryReadWrite: ["RegistryWrite"],
};

export const MAX_MODULES_PER_DEVICE = 50;
const ID_PATTERN = /^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$/;
const NEVER = "0001-01-01T00:00:00Z";
const POLICIES_KEY = "policies";
const SESSION_PREFIX = "session:";

export const identityKey = (deviceId: string, moduleId?: string): string =>
  moduleId === undefined ? deviceId : `${deviceId}/${moduleId}`;
const storeKey = (deviceId: string, moduleId?: string): string =>
  moduleId === undefined ? `device:${deviceId}` : `module:${deviceId}/${moduleId}`;

export const generateKey = (): string => randomBytes(32).toString("base64");

function checkId(kind: "device" | "module", id: unknown): asserts id is string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw badRequest(
      `${kind} id '${String(id).slice(0, 140)}' is invalid: 1-128 ASCII letters, digits or - . % _ * ? ! ( ) , : = @ $ '`,
    );
  }
}

function checkKeys(body: JsonObject): SymmetricKeys | null {
  const auth = isObject(body.authentication) ? body.authentication : {};
  const keys = isObject(auth.symmetricKey) ? auth.symmetricKey : {};
  const primaryKey = typeof keys.primaryKey === "string" ? keys.primaryKey : "";
  const secondaryKey = typeof keys.secondaryKey === "string" ? keys.secondaryKey : "";
  if (!primaryKey && !secondaryKey) return null;
  for (const key of [primaryKey, secondaryKey]) {
    const bytes = Buffer.from(key, "base64");
    if (bytes.length < 16 || bytes.length > 64 || bytes.toString("base64") !== key) {
      throw badRequest("symmetric keys must be base64 of 16 to 64 bytes, both primary and secondary");
    }
  }
  return { primaryKey, secondaryKey };
}

/** Compares an If-Match header value with an etag; a missing header or `*` always matches. */
function etagMatches(ifMatch: string | undefined, etag: string): boolean {
  if (ifMatch === undefined) return true;
  const wanted = ifMatch
    .trim()
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1");
  return wanted === "*" || wanted === etag;
}

export interface DesiredChange {
  deviceId: string;
  moduleId?: string;
  patch: JsonObject;
  version: number;
}

/**
 * Events: 'desired' (DesiredChange) after a desired-properties change; 'revoked' (identityKey) when an identity is
 * deleted, disabled or re-keyed, so that its connections are dropped.
 */
export class Registry extends EventEmitter {
  readonly hostName: string;
  private readonly devices = new Map<string, Identity>();
  private readonly modules = new Map<string, Map<string, Identity>>();
  private readonly connected = new Set<string>();
  private readonly sessions = new Map<string, string[]>();
  private policies: Policy[];
  private sequence = 0;

  constructor(
    hostName: string,
    readonly store: Store<StoredRecord>,
  ) {
    super();
    this.hostName = hostName;
    for (const [key, record] of store.entries) {
      if (key === POLICIES_KEY) continue;
      if (key.startsWith(SESSION_PREFIX)) {
        this.sessions.set(key.slice(SESSION_PREFIX.length), record as string[]);
        continue;
      }
      const identity = record as Identity;
      if (identity.moduleId === undefined) this.devices.set(identity.deviceId, identity);
      else this.modulesOf(identity.deviceId).set(identity.moduleId, identity);
      this.sequence = Math.max(this.sequence, sequenceOf(identity.etag), twinSequenceOf(identity.twin.etag));
    }
    const stored = store.entries.get(POLICIES_KEY) as Policy[] | undefined;
    this.policies =
      stored ??
      Object.entries(DEFAULT_POLICY_RIGHTS).map(([keyName, rights]) => ({
        keyName,
        primaryKey: generateKey(),
        secondaryKey: generateKey(),
        rights,
      }));
    if (!stored) store.put(POLICIES_KEY, this.policies);
  }

  // ---- policies and lookups used by authentication ----

  policy(keyName: string): Policy | undefined {
    return this.policies.find((p) => p.keyName === keyName);
  }

  findIdentity(deviceId: string, moduleId?: string): Identity | undefined {
    return moduleId === undefined ? this.devices.get(deviceId) : this.modules.get(deviceId)?.get(moduleId);
  }

  get identityCount(): number {
    let count = this.devices.size;
    for (const modules of this.modules.values()) count += modules.size;
    return count;
  }

  // ---- devices ----

  getDevice(deviceId: string): JsonObject {
    return this.deviceJson(this.requireDevice(deviceId));
  }

  listDevices(top = 1000): JsonObject[] {
    return [...this.devices.values()].slice(0, Math.max(0, top)).map((d) => this.deviceJson(d));
  }

  /** PUT /devices/{id}: create (409 if it exists and no If-Match was sent) or update (If-Match etag or `*`). */
  putDevice(deviceId: string, body: Json, ifMatch: string | undefined): JsonObject {
    checkId("device", deviceId);
    if (!isObject(body)) throw badRequest("the body must be a device JSON object");
    if (body.deviceId !== undefined && body.deviceId !== deviceId)
      throw badRequest("deviceId in the body differs from the path");
    const existing = this.devices.get(deviceId);
    if (existing && ifMatch === undefined) {
      throw new HubError(409, "DeviceAlreadyExists", `A device with ID '${deviceId}' is already registered`);
    }
    if (existing && !etagMatches(ifMatch, existing.etag)) throw preconditionFailed(`device ${deviceId}`);
    const device = existing ? this.updatedIdentity(existing, body) : this.newIdentity(deviceId, undefined, body);
    const status = body.status ?? device.status ?? "enabled";
    if (status !== "enabled" && status !== "disabled") throw badRequest("status must be 'enabled' or 'disabled'");
    if (status !== device.status) device.statusUpdatedTime = new Date().toISOString();
    device.status = status;
    device.statusReason = typeof body.statusReason === "string" ? body.statusReason : (device.statusReason ?? null);
    device.capabilities = { iotEdge: isObject(body.capabilities) && body.capabilities.iotEdge === true };
    this.save(device);
    if (
      existing &&
      (status === "disabled" ||
        existing.authentication.symmetricKey.primaryKey !== device.authentication.symmetricKey.primaryKey)
    ) {
      this.revoke(deviceId, true);
    }
    return this.deviceJson(device);
  }

  deleteDevice(deviceId: string, ifMatch: string | undefined): void {
    const device = this.requireDevice(deviceId);
    if (!etagMatches(ifMatch, device.etag)) throw preconditionFailed(`device ${deviceId}`);
    for (const moduleId of [...this.modulesOf(deviceId).keys()]) this.store.put(storeKey(deviceId, moduleId), null);
    this.modules.delete(deviceId);
    this.devices.delete(deviceId);
    this.store.put(storeKey(deviceId), null);
    this.revoke(deviceId, true);
  }

  /** POST /devices: bulk create/update/delete of up to 100 devices; each failure is reported, the rest goes on. */
  bulk(body: Json): JsonObject {
    if (!Array.isArray(body) || body.length === 0 || body.length > 100) {
      throw badRequest("the body must be an array of 1 to 100 devices");
    }
    const errors: JsonObject[] = [];
    for (const item of body) {
      const { id, deviceId: bodyId, importMode, eTag, etag, ...fields } = isObject(item) ? item : ({} as JsonObject);
      const deviceId = String(id ?? bodyId ?? "");
      const device = { ...fields, deviceId };
      const mode = String(importMode ?? "").toLowerCase();
      try {
        const givenEtag = eTag ?? etag;
        if (mode.endsWith("ifmatchetag") && typeof givenEtag !== "string")
          throw badRequest(`importMode ${String(importMode)} needs the device's eTag`);
        if (mode === "create") this.putDevice(deviceId, device, undefined);
        else if (mode === "update") this.putDevice(deviceId, device, "*");
        else if (mode === "updateifmatchetag") this.putDevice(deviceId, device, givenEtag as string);
        else if (mode === "delete") this.deleteDevice(deviceId, "*");
        else if (mode === "deleteifmatchetag") this.deleteDevice(deviceId, givenEtag as string);
        else throw badRequest(`unknown importMode '${String(importMode)}'`);
      } catch (err) {
        if (!(err instanceof HubError)) throw err;
        errors.push({ deviceId, errorCode: err.code, errorStatus: err.message });
      }
    }
    return { isSuccessful: errors.length === 0, errors, warnings: [] };
  }

  // ---- modules ----

  getModule(deviceId: string, moduleId: string): JsonObject {
    return this.moduleJson(this.requireModule(deviceId, moduleId));
  }

  listModules(deviceId: string): JsonObject[] {
    this.requireDevice(deviceId);
    return [...this.modulesOf(deviceId).values()].map((m) => this.moduleJson(m));
  }

  putModule(deviceId: string, moduleId: string, body: Json, ifMatch: string | undefined): JsonObject {
    checkId("device", deviceId);
    checkId("module", moduleId);
    if (!isObject(body)) throw badRequest("the body must be a module JSON object");
    if (
      (body.deviceId !== undefined && body.deviceId !== deviceId) ||
      (body.moduleId !== undefined && body.moduleId !== moduleId)
    ) {
      throw badRequest("deviceId or moduleId in the body differs from the path");
    }
    this.requireDevice(deviceId);
    const modules = this.modulesOf(deviceId);
    const existing = modules.get(moduleId);
    if (existing && ifMatch === undefined) {
      throw new HubError(
        409,
        "ModuleAlreadyExistsOnDevice",
        `A module with ID '${moduleId}' is already registered on device '${deviceId}'`,
      );
    }
    if (existing && !etagMatches(ifMatch, existing.etag)) throw preconditionFailed(`module ${deviceId}/${moduleId}`);
    if (!existing && modules.size >= MAX_MODULES_PER_DEVICE) {
      throw new HubError(
        403,
        "TooManyModulesOnDevice",
        `Device '${deviceId}' already has ${MAX_MODULES_PER_DEVICE} modules`,
      );
    }
    const module = existing ? this.updatedIdentity(existing, body) : this.newIdentity(deviceId, moduleId, body);
    if (typeof body.managedBy === "string") module.managedBy = body.managedBy;
    this.save(module);
    if (existing && existing.authentication.symmetricKey.primaryKey !== module.authentication.symmetricKey.primaryKey) {
      this.revoke(identityKey(deviceId, moduleId), false);
    }
    return this.moduleJson(module);
  }

  deleteModule(deviceId: string, moduleId: string, ifMatch: string | undefined): void {
    const module = this.requireModule(deviceId, moduleId);
    if (!etagMatches(ifMatch, module.etag)) throw preconditionFailed(`module ${deviceId}/${moduleId}`);
    this.modulesOf(deviceId).delete(moduleId);
    this.store.put(storeKey(deviceId, moduleId), null);
    this.revoke(identityKey(deviceId, moduleId), false);
  }

  // ---- twins, service side ----

  getTwin(deviceId: string, moduleId?: string): JsonObject {
    return this.twinJson(this.requireIdentity(deviceId, moduleId));
  }

  /** PATCH /twins/...: deep-merges tags and desired properties (null deletes) and notifies the identity. */
  patchTwin(deviceId: string, moduleId: string | undefined, body: Json, ifMatch: string | undefined): JsonObject {
    const { identity, tags, desired } = this.twinWrite(deviceId, moduleId, body, ifMatch);
    const now = new Date().toISOString();
    // Compute everything first: a request that fails validation changes nothing.
    const nextTags = tags === undefined ? identity.twin.tags : patchTags(identity.twin.tags, tags);
    const nextDesired =
      desired === undefined ? identity.twin.desired : patchProperties(identity.twin.desired, "desired", desired, now);
    identity.twin = { ...identity.twin, tags: nextTags, desired: nextDesired };
    this.saveTwin(identity);
    if (desired !== undefined) this.emitDesired(identity, desired as JsonObject);
    return this.twinJson(identity);
  }

  /** PUT /twins/...: replaces tags and desired properties whole. */
  replaceTwin(deviceId: string, moduleId: string | undefined, body: Json, ifMatch: string | undefined): JsonObject {
    const { identity, tags, desired } = this.twinWrite(deviceId, moduleId, body, ifMatch);
    const now = new Date().toISOString();
    const nextTags = patchTags({}, tags ?? {});
    const nextDesired = replaceProperties(identity.twin.desired, "desired", desired ?? {}, now);
    const before = identity.twin.desired.values;
    identity.twin = { ...identity.twin, tags: nextTags, desired: nextDesired };
    this.saveTwin(identity);
    this.emitDesired(identity, replacementPatch(before, nextDesired.values));
    return this.twinJson(identity);
  }

  // ---- twins, device side (MQTT) ----

  deviceTwin(deviceId: string, moduleId?: string): JsonObject {
    const identity = this.requireIdentity(deviceId, moduleId);
    return { desired: deviceView(identity.twin.desired), reported: deviceView(identity.twin.reported) };
  }

  /** A reported-properties patch from the identity itself; returns the new reported `$version`. */
  patchReported(deviceId: string, moduleId: string | undefined, patch: Json): number {
    const identity = this.requireIdentity(deviceId, moduleId);
    const reported = patchProperties(identity.twin.reported, "reported", patch, new Date().toISOString());
    identity.twin = { ...identity.twin, reported };
    identity.lastActivityTime = new Date().toISOString();
    this.saveTwin(identity);
    return reported.version;
  }

  // ---- connection state (not persisted: after a restart nothing is connected) ----

  setConnected(deviceId: string, moduleId: string | undefined, connected: boolean): void {
    const identity = this.findIdentity(deviceId, moduleId);
    const key = identityKey(deviceId, moduleId);
    if (connected) this.connected.add(key);
    else this.connected.delete(key);
    if (identity) {
      identity.connectionStateUpdatedTime = new Date().toISOString();
      if (connected) identity.lastActivityTime = identity.connectionStateUpdatedTime;
    }
  }

  // ---- persistent MQTT sessions (CONNECT with clean session false keeps subscriptions, across restarts too) ----

  sessionSubscriptions(key: string): string[] | undefined {
    return this.sessions.get(key);
  }

  /** Stores a session's subscriptions; null ends the session (clean CONNECT, identity deleted). */
  saveSession(key: string, subscriptions: string[] | null): void {
    const current = this.sessions.get(key);
    if (subscriptions === null) {
      if (!current) return;
      this.sessions.delete(key);
    } else {
      if (current && current.length === subscriptions.length && current.every((s, i) => s === subscriptions[i])) return;
      this.sessions.set(key, subscriptions);
    }
    this.store.put(SESSION_PREFIX + key, subscriptions);
  }

  // ---- internals ----

  private modulesOf(deviceId: string): Map<string, Identity> {
    let modules = this.modules.get(deviceId);
    if (!modules) this.modules.set(deviceId, (modules = new Map()));
    return modules;
  }

  private requireDevice(deviceId: string): Identity {
    const device = this.devices.get(deviceId);
    if (!device) throw deviceNotFound(deviceId);
    return device;
  }

  private requireModule(deviceId: string, moduleId: string): Identity {
    this.requireDevice(deviceId);
    const module = this.modules.get(deviceId)?.get(moduleId);
    if (!module) throw moduleNotFound(deviceId, moduleId);
    return module;
  }

  private requireIdentity(deviceId: string, moduleId?: string): Identity {
    return moduleId === undefined ? this.requireDevice(deviceId) : this.requireModule(deviceId, moduleId);
  }

  private nextEtag(): string {
    return Buffer.from(String(++this.sequence)).toString("base64");
  }

  private newIdentity(deviceId: string, moduleId: string | undefined, body: JsonObject): Identity {
    const now = new Date().toISOString();
    const keys = checkKeys(body) ?? { primaryKey: generateKey(), secondaryKey: generateKey() };
    return {
      deviceId,
      ...(moduleId === undefined ? {} : { moduleId, managedBy: "" }),
      generationId: randomUUID().replace(/-/g, "").slice(0, 18),
      etag: this.nextEtag(),
      statusUpdatedTime: NEVER,
      connectionStateUpdatedTime: NEVER,
      lastActivityTime: NEVER,
      authentication: {
        type: "sas",
        symmetricKey: keys,
        x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      },
      twin: newTwin(twinEtag(++this.sequence), now),
    };
  }

  private updatedIdentity(existing: Identity, body: JsonObject): Identity {
    const keys = checkKeys(body) ?? existing.authentication.symmetricKey;
    return {
      ...existing,
      etag: this.nextEtag(),
      authentication: { ...existing.authentication, symmetricKey: keys },
    };
  }

  private save(identity: Identity): void {
    if (identity.moduleId === undefined) this.devices.set(identity.deviceId, identity);
    else this.modulesOf(identity.deviceId).set(identity.moduleId, identity);
    this.store.put(storeKey(identity.deviceId, identity.moduleId), identity);
  }

  private saveTwin(identity: Identity): void {
    identity.twin.version += 1;
    identity.twin.etag = twinEtag(++this.sequence);
    this.save(identity);
  }

  /** What every twin write starts with: the identity, the parts of the body, and the If-Match check. */
  private twinWrite(deviceId: string, moduleId: string | undefined, body: Json, ifMatch: string | undefined) {
    const identity = this.requireIdentity(deviceId, moduleId);
    if (!isObject(body)) throw badRequest("the body must be a twin JSON object");
    const properties = body.properties === undefined || body.properties === null ? {} : body.properties;
    if (!isObject(properties)) throw badRequest("properties must be a JSON object");
    if (properties.reported !== undefined) {
      throw badRequest("reported properties can only be written by the device or module itself");
    }
    if (!etagMatches(ifMatch, identity.twin.etag)) {
      throw preconditionFailed(`the twin of ${identityKey(deviceId, moduleId)}`);
    }
    return { identity, tags: body.tags ?? undefined, desired: properties.desired ?? undefined };
  }

  private emitDesired(identity: Identity, patch: JsonObject): void {
    const change: DesiredChange = {
      deviceId: identity.deviceId,
      moduleId: identity.moduleId,
      patch,
      version: identity.twin.desired.version,
    };
    this.emit("desired", change);
  }

  private revoke(key: string, withModules: boolean): void {
    for (const sessionKey of [...this.sessions.keys()]) {
      if (sessionKey === key || (withModules && sessionKey.startsWith(`${key}/`))) this.saveSession(sessionKey, null);
    }
    this.emit("revoked", key, withModules);
  }

  private connectionState(identity: Identity): string {
    return this.connected.has(identityKey(identity.deviceId, identity.moduleId)) ? "Connected" : "Disconnected";
  }

  private deviceJson(d: Identity): JsonObject {
    return {
      deviceId: d.deviceId,
      generationId: d.generationId,
      etag: d.etag,
      connectionState: this.connectionState(d),
      status: d.status ?? "enabled",
      statusReason: d.statusReason ?? null,
      connectionStateUpdatedTime: d.connectionStateUpdatedTime,
      statusUpdatedTime: d.statusUpdatedTime,
      lastActivityTime: d.lastActivityTime,
      cloudToDeviceMessageCount: 0,
      capabilities: d.capabilities ?? { iotEdge: false },
      authentication: d.authentication as unknown as JsonObject,
    };
  }

  private moduleJson(m: Identity): JsonObject {
    return {
      moduleId: m.moduleId ?? null,
      managedBy: m.managedBy ?? "",
      deviceId: m.deviceId,
      generationId: m.generationId,
      etag: m.etag,
      connectionState: this.connectionState(m),
      connectionStateUpdatedTime: m.connectionStateUpdatedTime,
      lastActivityTime: m.lastActivityTime,
      cloudToDeviceMessageCount: 0,
      authentication: m.authentication as unknown as JsonObject,
    };
  }

  private twinJson(identity: Identity): JsonObject {
    const device = this.devices.get(identity.deviceId) ?? identity;
    const twin = identity.twin;
    return {
      deviceId: identity.deviceId,
      ...(identity.moduleId === undefined ? {} : { moduleId: identity.moduleId }),
      etag: twin.etag,
      deviceEtag: identity.etag,
      status: device.status ?? "enabled",
      statusUpdateTime: device.statusUpdatedTime,
      connectionState: this.connectionState(identity),
      lastActivityTime: identity.lastActivityTime,
      cloudToDeviceMessageCount: 0,
      authenticationType: "sas",
      x509Thumbprint: identity.authentication.x509Thumbprint as unknown as JsonObject,
      modelId: "",
      version: twin.version,
      ...(Object.keys(twin.tags).length ? { tags: twin.tags } : {}),
      properties: { desired: serviceView(twin.desired), reported: serviceView(twin.reported) },
    };
  }
}

/** Twin etags look like the real hub's: base64 of an 8-byte counter, e.g. "AAAAAAAAAAE=". */
function twinEtag(sequence: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(sequence));
  return bytes.toString("base64");
}

function twinSequenceOf(etag: string): number {
  const bytes = Buffer.from(etag, "base64");
  return bytes.length === 8 ? Number(bytes.readBigUInt64BE()) : 0;
}

function sequenceOf(etag: string): number {
  const decoded = Number(Buffer.from(etag, "base64").toString());
  return Number.isSafeInteger(decoded) ? decoded : 0;
}
