/**
 * Query paging: the page size a client asks for in `x-ms-max-item-count`, and the opaque `x-ms-continuation` token
 * that says where the next page starts. A token is checked against the query it was issued for.
 */
import { createHash } from "node:crypto";
import { badRequest } from "../errors";

/**
 * The docs: "A query object is instantiated with a max page size of less than or equal to 100 records"
 * (articles/iot-hub/iot-hub-devguide-query-language.md, "Query results pagination"). A larger request is served
 * 100 at a time rather than refused: older docs and the Node SDK's comments still speak of 1,000.
 */
export const MAX_PAGE_SIZE = 100;
/** A token is a few dozen characters; anything far longer is not one of ours. */
const MAX_TOKEN_LENGTH = 1024;

/** Where the next page starts: after the twin with this sort key (row queries) or at this row (aggregates). */
export interface Cursor {
  after?: string;
  offset?: number;
  /** Items already returned, so that TOP n holds across pages. */
  returned: number;
}

export function pageSizeOf(raw: number | string | undefined): number {
  if (raw === undefined || raw === "") return MAX_PAGE_SIZE;
  const n = typeof raw === "number" ? raw : /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1) {
    throw badRequest(
      `x-ms-max-item-count must be a whole number from 1 to ${MAX_PAGE_SIZE}, not '${String(raw).slice(0, 32)}'`,
    );
  }
  return Math.min(n, MAX_PAGE_SIZE);
}

/** Ties a token to its query text, so a token replayed with another query is refused rather than misread. */
export function fingerprintOf(query: string): string {
  return createHash("sha256").update(query).digest("base64url").slice(0, 16);
}

export function encodeContinuation(fingerprint: string, cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ q: fingerprint, ...cursor })).toString("base64url");
}

export function decodeContinuation(token: string, fingerprint: string): Cursor {
  const refuse = (why: string) =>
    badRequest(`x-ms-continuation is not valid for this query (${why}): start the query again`);
  if (token.length > MAX_TOKEN_LENGTH) throw refuse("too long");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw refuse("not a token this hub issued");
  }
  if (typeof parsed !== "object" || parsed === null) throw refuse("not a token this hub issued");
  const { q, after, offset, returned } = parsed as Record<string, unknown>;
  if (q !== fingerprint) throw refuse("it was issued for another query");
  const count = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0;
  if (!count(returned)) throw refuse("malformed");
  if (after !== undefined && typeof after !== "string") throw refuse("malformed");
  if (offset !== undefined && !count(offset)) throw refuse("malformed");
  if ((after === undefined) === (offset === undefined)) throw refuse("malformed");
  return { after, offset: offset as number | undefined, returned: returned as number };
}
