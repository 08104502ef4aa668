/**
 * Device and module twins: the service reads, patches and replaces tags and desired properties; the identity reads its
 * twin and patches its reported properties. Commit, then notify: a desired change reaches the edges only once it is
 * durable, so a device never sees a `$version` that a crash could take back and give to other content.
 */
import type { Durability } from "./durability";
import { badRequest, preconditionFailed } from "./errors";
import { etagMatches } from "./etags";
import type { HubEvents } from "./events";
import type { Identities } from "./identities";
import { Identity, identityKey } from "./records";
import {
  Json,
  JsonObject,
  isObject,
  nextTwinEtag,
  patchProperties,
  patchTags,
  replaceProperties,
  replacementPatch,
} from "./twin-document";
import { deviceTwinJson, twinJson } from "./views";

export class Twins {
  constructor(
    private readonly durability: Durability,
    private readonly identities: Identities,
    private readonly events: HubEvents,
  ) {}

  async get(deviceId: string, moduleId?: string): Promise<JsonObject> {
    await this.durability.settled();
    return this.json(this.identities.require(deviceId, moduleId));
  }

  /**
   * PATCH /twins/...: deep-merges tags and desired properties (null deletes a key) and notifies the identity.
   * `desired: null` or `tags: null` clears the whole section; the device is told each removed key, set to null.
   */
  async patch(
    deviceId: string,
    moduleId: string | undefined,
    body: Json,
    ifMatch: string | undefined,
  ): Promise<JsonObject> {
    const { identity, tags, desired } = this.begin(deviceId, moduleId, body, ifMatch);
    const now = new Date().toISOString();
    const twin = identity.twin;
    // Compute everything first: a request that fails validation changes nothing.
    const nextTags = tags === undefined ? twin.tags : tags === null ? {} : patchTags(twin.tags, tags);
    let nextDesired = twin.desired;
    let notify: JsonObject | undefined;
    if (desired === null) {
      nextDesired = replaceProperties(twin.desired, "desired", {}, now);
      notify = replacementPatch(twin.desired.values, {});
    } else if (desired !== undefined) {
      nextDesired = patchProperties(twin.desired, "desired", desired, now);
      notify = desired as JsonObject;
    }
    identity.twin = { ...twin, tags: nextTags, desired: nextDesired };
    return this.commit(identity, notify);
  }

  /** PUT /twins/...: replaces tags and desired properties whole. */
  async replace(
    deviceId: string,
    moduleId: string | undefined,
    body: Json,
    ifMatch: string | undefined,
  ): Promise<JsonObject> {
    const { identity, tags, desired } = this.begin(deviceId, moduleId, body, ifMatch);
    const now = new Date().toISOString();
    const nextTags = patchTags({}, tags ?? {});
    const nextDesired = replaceProperties(identity.twin.desired, "desired", desired ?? {}, now);
    const before = identity.twin.desired.values;
    identity.twin = { ...identity.twin, tags: nextTags, desired: nextDesired };
    return this.commit(identity, replacementPatch(before, nextDesired.values));
  }

  /** The identity's own view of its twin (MQTT twin GET). */
  async deviceTwin(deviceId: string, moduleId?: string): Promise<JsonObject> {
    await this.durability.settled();
    return deviceTwinJson(this.identities.require(deviceId, moduleId));
  }

  /** A reported-properties patch from the identity itself; resolves with the new reported `$version` once durable. */
  async patchReported(deviceId: string, moduleId: string | undefined, patch: Json): Promise<number> {
    const identity = this.identities.require(deviceId, moduleId);
    const now = new Date().toISOString();
    const reported = patchProperties(identity.twin.reported, "reported", patch, now);
    identity.twin = { ...identity.twin, reported };
    identity.lastActivityTime = now;
    this.bumpAndSave(identity);
    await this.durability.committed();
    return reported.version;
  }

  json(identity: Identity): JsonObject {
    const device = this.identities.find(identity.deviceId) ?? identity;
    const queued = this.identities.queuedCloudToDevice(identity.deviceId);
    return twinJson(identity, device, this.identities.isConnected(identity), queued);
  }

  private async commit(identity: Identity, desiredPatch: JsonObject | undefined): Promise<JsonObject> {
    this.bumpAndSave(identity);
    const version = identity.twin.desired.version;
    const answer = this.json(identity);
    await this.durability.committed();
    if (desiredPatch !== undefined) {
      this.events.emit("desired", {
        deviceId: identity.deviceId,
        moduleId: identity.moduleId,
        patch: desiredPatch,
        version,
      });
    }
    return answer;
  }

  private bumpAndSave(identity: Identity): void {
    identity.twin.version += 1;
    identity.twin.etag = nextTwinEtag(identity.twin.etag);
    this.identities.save(identity);
  }

  /** What every service twin write starts with: the identity, the parts of the body, and the If-Match check. */
  private begin(deviceId: string, moduleId: string | undefined, body: Json, ifMatch: string | undefined) {
    const identity = this.identities.require(deviceId, moduleId);
    if (!isObject(body)) throw badRequest("the body must be a twin JSON object");
    const properties = body.properties === undefined || body.properties === null ? {} : body.properties;
    if (!isObject(properties)) throw badRequest("properties must be a JSON object");
    // A twin read back and sent whole (the .NET and Python registry samples do it) carries reported with only its
    // `$metadata`/`$version`, and desired with them too: Azure ignores those read-only parts, as it ignores the
    // identity fields (DevicesClient_DeviceTwinLifecycle.json, the PATCH after the GET). Reported values are the
    // device's to write.
    const reported = properties.reported;
    if (reported !== undefined && reported !== null && !(isObject(reported) && onlyBookkeeping(reported))) {
      throw badRequest("reported properties can only be written by the device or module itself");
    }
    if (!etagMatches(ifMatch, identity.twin.etag)) {
      throw preconditionFailed(`the twin of ${identityKey(deviceId, moduleId)}`);
    }
    // Absent leaves a section alone; null clears it.
    return { identity, tags: body.tags, desired: withoutBookkeeping(properties.desired) };
  }
}

/** What the hub writes into a section itself; a client's copy of them is read-only. */
const BOOKKEEPING = new Set(["$metadata", "$version"]);

const onlyBookkeeping = (section: JsonObject): boolean => Object.keys(section).every((key) => BOOKKEEPING.has(key));

/** A section without its read-only parts; one that held nothing else is left alone (undefined), not patched. */
function withoutBookkeeping(section: Json | undefined): Json | undefined {
  if (!isObject(section)) return section;
  const entries = Object.entries(section).filter(([key]) => !BOOKKEEPING.has(key));
  if (entries.length === 0 && Object.keys(section).length > 0) return undefined;
  return Object.fromEntries<Json>(entries);
}
