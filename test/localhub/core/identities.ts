/**
 * The identity registry: devices and modules, their keys, etags and status, and whether they are connected now.
 * Writes resolve once the change is durable; a deleted, disabled or re-keyed identity is then revoked (its persistent
 * session ends and the edges drop its connections).
 */
import { randomInt } from "node:crypto";
import type { Store } from "../store/store";
import type { Durability } from "./durability";
import { HubError, badRequest, deviceNotFound, moduleNotFound, preconditionFailed } from "./errors";
import { EtagCounter, etagMatches } from "./etags";
import type { HubEvents } from "./events";
import { authenticationOf, checkId, scopesOf } from "./identity-fields";
import { Identity, StoredRecord, identityKey, identityStoreKey, isIdentityStoreKey } from "./records";
import type { Sessions } from "./sessions";
import { JsonObject, NEVER, isObject, newTwin } from "./twin-document";
import { deviceJson, moduleJson } from "./views";

export const MAX_MODULES_PER_DEVICE = 50;

/**
 * Azure's generationId is the creation time in .NET ticks (100 ns since 0001-01-01), 18 decimal digits: in the
 * recordings "637612875239479543" goes with a `$lastUpdated` of 2021-07-07T20:45:23.9479543Z. The sub-millisecond
 * digits here are random, so two identities made in one millisecond still differ.
 */
const TICKS_AT_UNIX_EPOCH_MS = 62_135_596_800_000;
export const generationIdAt = (ms: number): string =>
  String(BigInt(ms + TICKS_AT_UNIX_EPOCH_MS) * 10_000n + BigInt(randomInt(10_000)));

export class Identities {
  private readonly devices = new Map<string, Identity>();
  private readonly modules = new Map<string, Map<string, Identity>>();
  private readonly connected = new Set<string>();
  private membership = 0;

  constructor(
    private readonly store: Store<StoredRecord>,
    private readonly durability: Durability,
    private readonly etags: EtagCounter,
    private readonly sessions: Sessions,
    private readonly events: HubEvents,
    /** How many cloud-to-device messages wait for a device (the hub core's queue, built after this). */
    readonly queuedCloudToDevice: (deviceId: string) => number,
  ) {
    for (const [key, record] of store.entries) {
      if (!isIdentityStoreKey(key)) continue;
      const identity = record as Identity;
      this.remember(identity);
      etags.atLeast(identity.etag);
    }
  }

  // ---- lookups ----

  find(deviceId: string, moduleId?: string): Identity | undefined {
    return moduleId === undefined ? this.devices.get(deviceId) : this.modules.get(deviceId)?.get(moduleId);
  }

  require(deviceId: string, moduleId?: string): Identity {
    const device = this.devices.get(deviceId);
    if (!device) throw deviceNotFound(deviceId);
    if (moduleId === undefined) return device;
    const module = this.modules.get(deviceId)?.get(moduleId);
    if (!module) throw moduleNotFound(deviceId, moduleId);
    return module;
  }

  /** Grows whenever an identity is added or removed: what a cached listing in id order needs to know. */
  get membershipRevision(): number {
    return this.membership;
  }

  get count(): number {
    let count = this.devices.size;
    for (const modules of this.modules.values()) count += modules.size;
    return count;
  }

  allDevices(): IterableIterator<Identity> {
    return this.devices.values();
  }

  *allModules(): IterableIterator<Identity> {
    for (const modules of this.modules.values()) yield* modules.values();
  }

  isConnected(identity: Identity): boolean {
    return this.connected.has(identityKey(identity.deviceId, identity.moduleId));
  }

  // ---- devices ----

  private deviceView(device: Identity): JsonObject {
    return deviceJson(device, this.isConnected(device), this.queuedCloudToDevice(device.deviceId));
  }

  async getDevice(deviceId: string): Promise<JsonObject> {
    await this.durability.settled();
    return this.deviceView(this.require(deviceId));
  }

  async listDevices(top = 1000): Promise<JsonObject[]> {
    await this.durability.settled();
    return [...this.devices.values()].slice(0, Math.max(0, top)).map((d) => this.deviceView(d));
  }

  /** PUT /devices/{id}: create (409 if it exists and no If-Match was sent) or update (If-Match etag or `*`). */
  async putDevice(deviceId: string, body: unknown, ifMatch: string | undefined): Promise<JsonObject> {
    const { device, revoke } = this.applyDevice(deviceId, body, ifMatch);
    await this.durability.committed();
    if (revoke) this.events.emit("revoked", { key: deviceId, withModules: true });
    return this.deviceView(device);
  }

  /** The synchronous part of a device PUT, shared with bulk import: validate, then change memory and the store. */
  applyDevice(deviceId: string, body: unknown, ifMatch: string | undefined): { device: Identity; revoke: boolean } {
    checkId("device", deviceId);
    if (!isObject(body)) throw badRequest("the body must be a device JSON object");
    if (body.deviceId !== undefined && body.deviceId !== deviceId)
      throw badRequest("deviceId in the body differs from the path");
    const existing = this.devices.get(deviceId);
    if (existing && ifMatch === undefined) {
      throw new HubError(409, "DeviceAlreadyExists", `A device with ID '${deviceId}' is already registered`);
    }
    if (existing && !etagMatches(ifMatch, existing.etag)) throw preconditionFailed(`device ${deviceId}`);
    const status = body.status ?? existing?.status ?? "enabled";
    if (status !== "enabled" && status !== "disabled") throw badRequest("status must be 'enabled' or 'disabled'");
    const device = existing ? this.updated(existing, body) : this.created(deviceId, undefined, body);
    // "Never" until the status changes, as on Azure (DevicesClient_UpdateDevice_EtagDoesNotMatch.json).
    if (existing && status !== existing.status) device.statusUpdatedTime = new Date().toISOString();
    device.status = status;
    device.statusReason = typeof body.statusReason === "string" ? body.statusReason : (device.statusReason ?? null);
    device.capabilities = { iotEdge: isObject(body.capabilities) && body.capabilities.iotEdge === true };
    const { deviceScope, parentScopes } = scopesOf(body, device, (scope) => this.isEdgeScope(scope, deviceId));
    device.deviceScope = deviceScope;
    device.parentScopes = parentScopes;
    this.save(device);
    const revoke = existing !== undefined && (status === "disabled" || rekeyed(existing, device));
    if (revoke) this.sessions.endAll(deviceId, true);
    return { device, revoke };
  }

  async deleteDevice(deviceId: string, ifMatch: string | undefined): Promise<void> {
    this.applyDeviceDelete(deviceId, ifMatch);
    await this.durability.committed();
    this.events.emit("revoked", { key: deviceId, withModules: true });
  }

  applyDeviceDelete(deviceId: string, ifMatch: string | undefined): void {
    const device = this.require(deviceId);
    if (!etagMatches(ifMatch, device.etag)) throw preconditionFailed(`device ${deviceId}`);
    for (const moduleId of this.modules.get(deviceId)?.keys() ?? []) {
      this.store.put(identityStoreKey(deviceId, moduleId), null);
    }
    this.modules.delete(deviceId);
    this.devices.delete(deviceId);
    this.membership += 1;
    this.store.put(identityStoreKey(deviceId), null);
    this.sessions.endAll(deviceId, true);
  }

  // ---- modules ----

  async getModule(deviceId: string, moduleId: string): Promise<JsonObject> {
    await this.durability.settled();
    const module = this.require(deviceId, moduleId);
    return moduleJson(module, this.isConnected(module));
  }

  async listModules(deviceId: string): Promise<JsonObject[]> {
    await this.durability.settled();
    this.require(deviceId);
    return [...(this.modules.get(deviceId)?.values() ?? [])].map((m) => moduleJson(m, this.isConnected(m)));
  }

  async putModule(deviceId: string, moduleId: string, body: unknown, ifMatch: string | undefined): Promise<JsonObject> {
    checkId("device", deviceId);
    checkId("module", moduleId);
    if (!isObject(body)) throw badRequest("the body must be a module JSON object");
    if (
      (body.deviceId !== undefined && body.deviceId !== deviceId) ||
      (body.moduleId !== undefined && body.moduleId !== moduleId)
    ) {
      throw badRequest("deviceId or moduleId in the body differs from the path");
    }
    this.require(deviceId);
    const siblings = this.modules.get(deviceId);
    const existing = siblings?.get(moduleId);
    if (existing && ifMatch === undefined) {
      throw new HubError(
        409,
        "ModuleAlreadyExistsOnDevice",
        `A module with ID '${moduleId}' is already registered on device '${deviceId}'`,
      );
    }
    if (existing && !etagMatches(ifMatch, existing.etag)) throw preconditionFailed(`module ${deviceId}/${moduleId}`);
    if (!existing && (siblings?.size ?? 0) >= MAX_MODULES_PER_DEVICE) {
      throw new HubError(
        403,
        "TooManyModulesOnDevice",
        `Device '${deviceId}' already has ${MAX_MODULES_PER_DEVICE} modules`,
      );
    }
    const module = existing ? this.updated(existing, body) : this.created(deviceId, moduleId, body);
    if (typeof body.managedBy === "string") module.managedBy = body.managedBy;
    this.save(module);
    const revoke = existing !== undefined && rekeyed(existing, module);
    if (revoke) this.sessions.endAll(identityKey(deviceId, moduleId), false);
    await this.durability.committed();
    if (revoke) this.events.emit("revoked", { key: identityKey(deviceId, moduleId), withModules: false });
    return moduleJson(module, this.isConnected(module));
  }

  async deleteModule(deviceId: string, moduleId: string, ifMatch: string | undefined): Promise<void> {
    const module = this.require(deviceId, moduleId);
    if (!etagMatches(ifMatch, module.etag)) throw preconditionFailed(`module ${deviceId}/${moduleId}`);
    this.modules.get(deviceId)?.delete(moduleId);
    this.membership += 1;
    this.store.put(identityStoreKey(deviceId, moduleId), null);
    this.sessions.endAll(identityKey(deviceId, moduleId), false);
    await this.durability.committed();
    this.events.emit("revoked", { key: identityKey(deviceId, moduleId), withModules: false });
  }

  // ---- connection state (not persisted: after a restart nothing is connected) ----

  setConnected(deviceId: string, moduleId: string | undefined, connected: boolean): void {
    const key = identityKey(deviceId, moduleId);
    if (connected) this.connected.add(key);
    else this.connected.delete(key);
    const identity = this.find(deviceId, moduleId);
    if (identity) {
      identity.connectionStateUpdatedTime = new Date().toISOString();
      if (connected) identity.lastActivityTime = identity.connectionStateUpdatedTime;
    }
  }

  /** Stores an identity whose twin or activity changed (twins.ts); durable at the next store sync. */
  save(identity: Identity): void {
    this.remember(identity);
    this.store.put(identityStoreKey(identity.deviceId, identity.moduleId), identity);
  }

  // ---- internals ----

  private remember(identity: Identity): void {
    if (!this.find(identity.deviceId, identity.moduleId)) this.membership += 1;
    if (identity.moduleId === undefined) {
      this.devices.set(identity.deviceId, identity);
      return;
    }
    let siblings = this.modules.get(identity.deviceId);
    if (!siblings) this.modules.set(identity.deviceId, (siblings = new Map<string, Identity>()));
    siblings.set(identity.moduleId, identity);
  }

  /** True when an Edge device other than `self` has this scope. */
  private isEdgeScope(scope: string, self: string): boolean {
    for (const device of this.devices.values()) {
      if (device.deviceId !== self && device.capabilities?.iotEdge && device.deviceScope === scope) return true;
    }
    return false;
  }

  private created(deviceId: string, moduleId: string | undefined, body: JsonObject): Identity {
    const now = new Date().toISOString();
    return {
      deviceId,
      ...(moduleId === undefined ? {} : { moduleId }),
      generationId: generationIdAt(Date.now()),
      etag: this.etags.nextIdentityEtag(),
      statusUpdatedTime: NEVER,
      connectionStateUpdatedTime: NEVER,
      lastActivityTime: NEVER,
      authentication: authenticationOf(body),
      twin: newTwin(now, moduleId !== undefined),
    };
  }

  private updated(existing: Identity, body: JsonObject): Identity {
    return {
      ...existing,
      etag: this.etags.nextIdentityEtag(),
      authentication: authenticationOf(body, existing.authentication),
    };
  }
}

/** A changed primary key, or another way to authenticate: connections made with the old credentials must end. */
function rekeyed(before: Identity, after: Identity): boolean {
  const [a, b] = [before.authentication, after.authentication];
  return (
    a.type !== b.type ||
    a.symmetricKey.primaryKey !== b.symmetricKey.primaryKey ||
    a.x509Thumbprint.primaryThumbprint !== b.x509Thumbprint.primaryThumbprint
  );
}
