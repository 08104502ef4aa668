/**
 * Identity etags, encoded as the real hub encodes them, from one durable counter: an etag is never handed out twice,
 * not even to an identity that is deleted and created again after a restart (a stale If-Match must not match).
 * Twin etags count per twin, as on Azure (twin-document.ts).
 */
import type { Store } from "../store/store";
import { ETAG_SEQUENCE_KEY, StoredRecord } from "./records";

export class EtagCounter {
  private sequence: number;

  constructor(private readonly store: Store<StoredRecord>) {
    const stored = store.entries.get(ETAG_SEQUENCE_KEY);
    this.sequence = typeof stored === "number" ? stored : 0;
  }

  /** Counters written before the counter itself was stored: never go below what existing etags used. */
  atLeast(etag: string): void {
    this.sequence = Math.max(this.sequence, identityEtagSequence(etag));
  }

  /** Identity etags: base64 of the decimal counter, e.g. "MTI=". */
  nextIdentityEtag(): string {
    return Buffer.from(String(this.advance())).toString("base64");
  }

  private advance(): number {
    this.sequence += 1;
    this.store.put(ETAG_SEQUENCE_KEY, this.sequence);
    return this.sequence;
  }
}

function identityEtagSequence(etag: string): number {
  const decoded = Number(Buffer.from(etag, "base64").toString());
  return Number.isSafeInteger(decoded) ? decoded : 0;
}

/** Compares an If-Match header value with an etag; a missing header or `*` always matches. */
export function etagMatches(ifMatch: string | undefined, etag: string): boolean {
  if (ifMatch === undefined) return true;
  const wanted = ifMatch
    .trim()
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1");
  return wanted === "*" || wanted === etag;
}
