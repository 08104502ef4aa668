/**
 * Serves POST /devices/query from the hub's core: the registry's device and module twins as the query's sources,
 * and the paging headers the SDKs send (`x-ms-max-item-count`, `x-ms-continuation`). The REST route calls this.
 */
import type { HubCore } from "../hub-core";
import type { Identity } from "../records";
import { type Json, isObject } from "../twin-document";
import { type QueryPage, runQuery, twinKey } from "./index";

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
  const ordered = function* (all: Iterable<Identity>, after = "") {
    const sorted = [...all].map((identity) => ({ key: twinKey(identity.deviceId, identity.moduleId), identity }));
    sorted.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (let i = firstAfter(sorted, after); i < sorted.length; i++) yield twins.json(sorted[i].identity);
  };
  return runQuery(
    isObject(body) ? body.query : undefined,
    {
      devices: (after) => ordered(identities.allDevices(), after),
      modules: (after) => ordered(identities.allModules(), after),
      ordered: true,
    },
    { maxItemCount: single(headers["x-ms-max-item-count"]), continuation: single(headers["x-ms-continuation"]) },
  );
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
