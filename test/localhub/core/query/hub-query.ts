/**
 * Serves POST /devices/query from the hub's core: the registry's device and module twins as the query's sources,
 * and the paging headers the SDKs send (`x-ms-max-item-count`, `x-ms-continuation`). The REST route calls this.
 */
import type { HubCore } from "../hub-core";
import type { Identity } from "../records";
import { type Json, isObject } from "../twin-document";
import { type QueryPage, runQuery } from "./index";

export async function queryTwins(
  core: HubCore,
  body: Json,
  headers: Record<string, string | string[] | undefined>,
): Promise<QueryPage> {
  // A query must show durable state only, like every other read: the registry's reads sync the store first, and
  // listing no device is the cheapest of them. (HubCore has no sync of its own to call.)
  await core.identities.listDevices(0);
  const { identities, twins } = core;
  const json = function* (all: Iterable<Identity>) {
    for (const identity of all) yield twins.json(identity);
  };
  return runQuery(
    isObject(body) ? body.query : undefined,
    { devices: () => json(identities.allDevices()), modules: () => json(identities.allModules()) },
    { maxItemCount: single(headers["x-ms-max-item-count"]), continuation: single(headers["x-ms-continuation"]) },
  );
}

/** A header sent twice arrives as an array; the first value is the one a client meant. */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
