/**
 * Twin documents: tags, desired and reported properties with their `$version` and `$metadata`, the merge rules of a
 * patch (objects merge, `null` deletes) and the documented limits. Pure functions: no I/O, no clock of their own.
 */
import { HubError, badRequest } from "./errors";

export type Json = null | boolean | number | string | Json[] | JsonObject;
export type JsonObject = { [key: string]: Json };

/** `$lastUpdated` for every key that was ever set, nested like the values; `$lastUpdatedVersion` on desired. */
export type Metadata = {
  $lastUpdated: string;
  $lastUpdatedVersion?: number;
  [key: string]: Metadata | string | number | undefined;
};

export interface PropertySet {
  values: JsonObject;
  metadata: Metadata;
  version: number;
}

export interface TwinState {
  etag: string;
  version: number;
  tags: JsonObject;
  desired: PropertySet;
  reported: PropertySet;
}

export type Section = "tags" | "desired" | "reported";

const SIZE_LIMITS: Record<Section, number> = { tags: 8 * 1024, desired: 32 * 1024, reported: 32 * 1024 };
const MAX_DEPTH = 10;
const MAX_KEY_BYTES = 1024;
const MAX_STRING_BYTES = 4 * 1024;
const MAX_SAFE_TWIN_INTEGER = 4503599627370495;
// Control characters are exactly what the twin key rule forbids, so this class must name them.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_KEY = /[.$ \u0000-\u001f\u007f]/;

/** "Never", as Azure writes an unset time. */
export const NEVER = "0001-01-01T00:00:00Z";

/**
 * A new twin as Azure creates it (azure-sdk-for-net SessionRecords DevicesClient_DeviceTwinLifecycle.json and
 * ModulesClient_DeviceTwinLifecycle.json): twin `version` 2, desired and reported `$version` 1, `$metadata` with only
 * `$lastUpdated` (the creation time on a device twin, "never" on a module twin), etag `AAAAAAAAAAE=`.
 * Twins stored by older hubs (versions from 0) load as they are: their versions only grow from there.
 */
export function newTwin(now: string, isModule: boolean): TwinState {
  const lastUpdated = isModule ? NEVER : now;
  return {
    etag: nextTwinEtag(undefined),
    version: 2,
    tags: {},
    desired: { values: {}, metadata: { $lastUpdated: lastUpdated }, version: 1 },
    reported: { values: {}, metadata: { $lastUpdated: lastUpdated }, version: 1 },
  };
}

/**
 * A twin's etag counts its own writes, base64 of an 8-byte counter from `AAAAAAAAAAE=` (the recordings above).
 * A twin stored with a hub-wide counter's etag goes on from that number.
 */
export function nextTwinEtag(previous: string | undefined): string {
  const bytes = previous === undefined ? Buffer.alloc(0) : Buffer.from(previous, "base64");
  const count = bytes.length === 8 ? bytes.readBigUInt64BE() : 0n;
  const next = Buffer.alloc(8);
  next.writeBigUInt64BE(count + 1n);
  return next.toString("base64");
}

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Checks keys, depth, string lengths and number range of a section's values or patch. Depth counts the objects (and
 * arrays) nested below the section root, which is itself level 0: the docs' own example
 * `tags.one.two.three.four.five.six.seven.eight.nine.ten.property` is valid, one more object level is not.
 */
export function validateValues(section: Section, value: Json, depth = 0, path: string = section): void {
  if (isObject(value)) {
    if (depth > MAX_DEPTH) throw badRequest(`${path}: nesting deeper than ${MAX_DEPTH} levels`);
    for (const [key, child] of Object.entries(value)) {
      if (!key || Buffer.byteLength(key) > MAX_KEY_BYTES || FORBIDDEN_KEY.test(key)) {
        throw badRequest(
          `${path}: invalid property name '${key.slice(0, 64)}' (no '.', '$', space or control characters, at most 1 KB)`,
        );
      }
      validateValues(section, child, depth + 1, `${path}.${key}`);
    }
  } else if (Array.isArray(value)) {
    if (depth > MAX_DEPTH) throw badRequest(`${path}: nesting deeper than ${MAX_DEPTH} levels`);
    value.forEach((item, i) => validateValues(section, item, depth + 1, `${path}[${i}]`));
  } else if (typeof value === "string") {
    if (Buffer.byteLength(value) > MAX_STRING_BYTES) throw badRequest(`${path}: string longer than 4 KB`);
  } else if (typeof value === "number") {
    if (!Number.isFinite(value) || (Number.isInteger(value) && Math.abs(value) > MAX_SAFE_TWIN_INTEGER)) {
      throw badRequest(`${path}: number out of range`);
    }
  }
}

function checkSize(section: Section, values: JsonObject): void {
  const size = Buffer.byteLength(JSON.stringify(values));
  if (size > SIZE_LIMITS[section]) {
    throw new HubError(
      400,
      "ArgumentInvalid",
      `${section} would be ${size} bytes, over the limit of ${SIZE_LIMITS[section]}`,
    );
  }
}

function touch(metadata: Metadata, now: string, version: number | undefined): void {
  metadata.$lastUpdated = now;
  if (version !== undefined) metadata.$lastUpdatedVersion = version;
}

function mergeInto(
  values: JsonObject,
  metadata: Metadata,
  patch: JsonObject,
  now: string,
  version: number | undefined,
): void {
  touch(metadata, now, version);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete values[key];
      delete metadata[key];
    } else if (isObject(value)) {
      if (!isObject(values[key])) values[key] = {};
      const child = metadata[key];
      const childMetadata: Metadata = typeof child === "object" ? child : { $lastUpdated: now };
      metadata[key] = childMetadata;
      mergeInto(values[key], childMetadata, value, now, version);
    } else {
      values[key] = value;
      metadata[key] =
        version === undefined ? { $lastUpdated: now } : { $lastUpdated: now, $lastUpdatedVersion: version };
    }
  }
}

/** A merged copy of a property set or tags: the stored one stays untouched until the whole request is valid. */
export function patchProperties(set: PropertySet, section: Section, patch: Json, now: string): PropertySet {
  if (!isObject(patch)) throw badRequest(`${section} must be a JSON object`);
  validateValues(section, patch);
  const version = set.version + 1;
  const next: PropertySet = { values: structuredClone(set.values), metadata: structuredClone(set.metadata), version };
  mergeInto(next.values, next.metadata, patch, now, section === "desired" ? version : undefined);
  checkSize(section, next.values);
  return next;
}

/** A property set whose values are replaced whole (twin PUT). */
export function replaceProperties(set: PropertySet, section: Section, values: Json, now: string): PropertySet {
  if (!isObject(values)) throw badRequest(`${section} must be a JSON object`);
  const clean = stripBookkeeping(values);
  validateValues(section, clean);
  const version = set.version + 1;
  const next: PropertySet = { values: {}, metadata: { $lastUpdated: now }, version };
  mergeInto(next.values, next.metadata, clean, now, section === "desired" ? version : undefined);
  checkSize(section, next.values);
  return next;
}

export function patchTags(tags: JsonObject, patch: Json): JsonObject {
  if (!isObject(patch)) throw badRequest("tags must be a JSON object");
  validateValues("tags", patch);
  const next = structuredClone(tags);
  mergeInto(next, { $lastUpdated: "" }, patch, "", undefined);
  checkSize("tags", next);
  return next;
}

/** Drops `$version`, `$metadata` and the like that clients echo back from a twin they read. */
export function stripBookkeeping(values: JsonObject): JsonObject {
  const clean: JsonObject = {};
  for (const [key, value] of Object.entries(values)) if (!key.startsWith("$") && value !== null) clean[key] = value;
  return clean;
}

/** What a device must be told after a replace: every new value, and `null` for each key that is gone. */
export function replacementPatch(before: JsonObject, after: JsonObject): JsonObject {
  const patch: JsonObject = structuredClone(after);
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  return patch;
}

/** The service view of a property set: values plus `$metadata` and `$version`. */
export function serviceView(set: PropertySet): JsonObject {
  return { ...set.values, $metadata: set.metadata as unknown as JsonObject, $version: set.version };
}

/** The device view (MQTT twin GET): values plus `$version`, no metadata. */
export function deviceView(set: PropertySet): JsonObject {
  return { ...set.values, $version: set.version };
}
