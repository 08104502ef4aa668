/**
 * Twin queries (`POST /devices/query`): runs one page of an IoT Hub query over the hub's device or module twins.
 * Pure: the REST edge supplies the twins and the paging headers, and sends back the items and the next token.
 */
import { badRequest } from "../errors";
import type { Json, JsonObject } from "../twin-document";
import type { QueryAst } from "./ast";
import { compileCondition } from "./evaluate";
import { invalid } from "./lexer";
import { type Cursor, decodeContinuation, encodeContinuation, fingerprintOf, pageSizeOf } from "./paging";
import { parseQuery } from "./parser";
import { type Selection, planSelection } from "./select";
import { runAtOnce, runInSlices } from "./slices";

export { MAX_PAGE_SIZE } from "./paging";
export { QUERY_SLICE_MS } from "./slices";

/** Docs: "Query expressions can have a maximum length of 8192 characters" (articles/iot-hub/query-twins.md). */
export const MAX_QUERY_LENGTH = 8192;
/** Compiled queries kept so that paging through a result parses it once; a bounded map, oldest dropped first. */
const CACHE_SIZE = 64;

export interface QuerySources {
  /** Service twin JSON, as GET /twins/{id} returns it. */
  devices(after?: string): Iterable<JsonObject>;
  /** Service module twin JSON, as GET /twins/{id}/modules/{mid} returns it. */
  modules(after?: string): Iterable<JsonObject>;
  /**
   * True when both yield twins in `twinKey` order, from the first after `after`: a page then stops as soon as it is
   * full instead of reading (and building) every twin. Sources that are not ordered are read whole and sorted.
   */
  ordered?: boolean;
}

/** The order of query results: device id, then module id. IDs are printable ASCII, so NUL keeps that order. */
export function twinKey(deviceId: string, moduleId?: string): string {
  return deviceId + "\u0000" + (moduleId ?? "");
}

export interface QueryPage {
  items: Json[];
  /** The `x-ms-item-type` header: "twin" for SELECT * over twins, "raw" for projections and aggregates. */
  itemType: "twin" | "raw";
  /** The `x-ms-continuation` header, present only when more pages remain. */
  continuation?: string;
}

interface CompiledQuery {
  ast: QueryAst;
  where?: (twin: JsonObject) => boolean;
  selection: Selection;
  fingerprint: string;
}

const cache = new Map<string, CompiledQuery>();

type PageRequest = { maxItemCount?: number | string; continuation?: string };

/** One page at once: for callers that own the event loop (tests, tools). The hub serves pages with runQueryInSlices. */
export function runQuery(text: unknown, sources: QuerySources, page: PageRequest): QueryPage {
  return runAtOnce(evaluatePage(text, sources, page));
}

/** One page, evaluated in slices that leave the event loop to other clients between them (slices.ts). */
export function runQueryInSlices(text: unknown, sources: QuerySources, page: PageRequest): Promise<QueryPage> {
  return runInSlices(evaluatePage(text, sources, page));
}

/** Evaluates a page, yielding after each twin it reads: the driver decides where to pause. */
function* evaluatePage(text: unknown, sources: QuerySources, page: PageRequest): Generator<void, QueryPage> {
  const query = compileQuery(text);
  const pageSize = pageSizeOf(page.maxItemCount);
  const cursor: Cursor = page.continuation
    ? decodeContinuation(page.continuation, query.fingerprint)
    : { returned: 0, ...(query.selection.kind === "aggregate" ? { offset: 0 } : { after: "" }) };
  const { ast, where, selection } = query;
  const top = ast.top ?? Infinity;
  const limit = Math.max(0, Math.min(pageSize, top - cursor.returned));
  const read = (after?: string) => (ast.from === "devices" ? sources.devices(after) : sources.modules(after));
  const itemType = selection.kind === "twins" ? "twin" : "raw";

  if (selection.kind === "aggregate") {
    if (cursor.offset === undefined) throw badRequest("x-ms-continuation is not valid for this query: start it again");
    const twins: JsonObject[] = [];
    for (const twin of read()) {
      if (!where || where(twin)) twins.push(twin);
      yield;
    }
    const rows = selection.rows(twins);
    const items = rows.slice(cursor.offset, cursor.offset + limit);
    const next = { offset: cursor.offset + items.length, returned: cursor.returned + items.length };
    const more = next.offset < rows.length && next.returned < top;
    return { items, itemType, ...(more ? { continuation: encodeContinuation(query.fingerprint, next) } : {}) };
  }

  if (cursor.after === undefined) throw badRequest("x-ms-continuation is not valid for this query: start it again");
  // Twins come in a stable order (device id, then module id) so that a page can start after the last one sent:
  // a twin added or removed between pages does not shift the others.
  const after = cursor.after;
  const matches: { key: string; twin: JsonObject }[] = [];
  if (limit > 0) {
    for (const twin of read(after)) {
      const key = sortKey(twin);
      const matched = key > after && (!where || where(twin));
      if (matched) matches.push({ key, twin });
      if (sources.ordered && matches.length > limit) break; // one more than the page: proof that more remain
      yield;
    }
  }
  if (!sources.ordered) matches.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const chosen = matches.slice(0, limit);
  const items = selection.kind === "twins" ? chosen.map((m) => m.twin) : chosen.map((m) => selection.project(m.twin));
  const returned = cursor.returned + items.length;
  const more = matches.length > chosen.length && returned < top;
  const next = { after: chosen.length ? chosen[chosen.length - 1].key : after, returned };
  return { items, itemType, ...(more ? { continuation: encodeContinuation(query.fingerprint, next) } : {}) };
}

function compileQuery(text: unknown): CompiledQuery {
  if (typeof text !== "string" || !text.trim()) {
    throw badRequest(
      'The query is invalid: send a JSON body {"query": "SELECT * FROM devices"} with a non-empty query.',
    );
  }
  if (text.length > MAX_QUERY_LENGTH) {
    throw invalid(`it is ${text.length} characters long; at most ${MAX_QUERY_LENGTH} are allowed`);
  }
  const hit = cache.get(text);
  if (hit) return hit;
  const ast = parseQuery(text);
  const compiled: CompiledQuery = {
    ast,
    where: ast.where ? compileCondition(ast.where, ast.from) : undefined,
    selection: planSelection(ast),
    fingerprint: fingerprintOf(text),
  };
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(text, compiled);
  return compiled;
}

function sortKey(twin: JsonObject): string {
  return twinKey(
    typeof twin.deviceId === "string" ? twin.deviceId : "",
    typeof twin.moduleId === "string" ? twin.moduleId : undefined,
  );
}
