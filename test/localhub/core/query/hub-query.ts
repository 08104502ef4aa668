/**
 * Serves POST /devices/query from the hub's core: the registry's device and module twins as the query's sources,
 * and the paging headers the SDKs send (`x-ms-max-item-count`, `x-ms-continuation`). The REST route calls this.
 */
import type { HubCore } from "../hub-core";
import type { Identity } from "../records";
import { type Json, isObject } from "../twin-document";
import { type QueryPage, runQueryInSlices, twinKey } from "./index";

export async function queryTwins(
  core: HubCore,
  body: Json,
  headers: Record<string, string | string[] | undefined>,
): Promise<QueryPage> {
  // A query must show durable state only, like every other read.
  await core.durable();
  const { identities, twins } = core;
  // In result order, from the first twin after the page's start, each twin's JSON built only when it is read:
  // a page of 100 over 10,000 twins then builds about 100, not 10,000.
  const ordered = function* (collection: "devices" | "modules", after = "") {
    const sorted = sortedIdentities(core, collection);
    // The identity, looked up again: the cached order holds keys, and a twin may have changed since.
    for (let i = firstAfter(sorted, after); i < sorted.length; i++) {
      const identity = identities.find(sorted[i].deviceId, sorted[i].moduleId);
      if (identity) yield twins.json(identity);
    }
  };
  return runQueryInSlices(
    isObject(body) ? body.query : undefined,
    {
      devices: (after) => ordered("devices", after),
      modules: (after) => ordered("modules", after),
      ordered: true,
    },
    { maxItemCount: single(headers["x-ms-max-item-count"]), continuation: single(headers["x-ms-continuation"]) },
  );
}

interface SortedKey {
  key: string;
  deviceId: string;
  moduleId?: string;
}

/** The identities in result order, kept until one is added or removed: paging through a query sorts them once. */
const sortedCache = new WeakMap<
  HubCore,
  Partial<Record<"devices" | "modules", { revision: number; keys: SortedKey[] }>>
>();

function sortedIdentities(core: HubCore, collection: "devices" | "modules"): SortedKey[] {
  const revision = core.identities.membershipRevision;
  const cache = sortedCache.get(core) ?? {};
  sortedCache.set(core, cache);
  const cached = cache[collection];
  if (cached?.revision === revision) return cached.keys;
  const all: Iterable<Identity> =
    collection === "devices" ? core.identities.allDevices() : core.identities.allModules();
  const keys = [...all].map(({ deviceId, moduleId }) => ({ key: twinKey(deviceId, moduleId), deviceId, moduleId }));
  keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  cache[collection] = { revision, keys };
  return keys;
}

/** Binary search: the index of the first entry whose key sorts after `after`. */
function firstAfter(sorted: { key: string }[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid].key <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A header sent twice arrives as an array; the first value is the one a client meant. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
