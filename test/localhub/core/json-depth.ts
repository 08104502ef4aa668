/**
 * Untrusted JSON is measured before it is parsed: nesting is counted on the raw text, so a document nested 100,000
 * levels is refused in one pass instead of reaching JSON.parse, JSON.stringify or a recursive check (RangeError).
 */
import { badRequest } from "./errors";
import type { Json } from "./twin-document";

/**
 * Objects and arrays nested in one JSON document (REST body, method payload or answer, reported patch). Azure
 * documents depth only for twins (10 levels below a section, checked by twin-document.ts; a PATCH body adds
 * `properties.desired` around it); 32 leaves room for every legal twin body and any method payload a device uses.
 */
export const MAX_JSON_DEPTH = 32;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when `text` opens more than `max` objects or arrays inside one another (brackets in strings do not count). */
export function nestedDeeperThan(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) depth--;
  }
  return false;
}

/** JSON.parse behind the depth check; `what` names the document in the 400 (e.g. "The request body"). */
export function parseBoundedJson(text: string, what: string, max = MAX_JSON_DEPTH): Json {
  if (nestedDeeperThan(text, max)) throw badRequest(`${what} is nested deeper than ${max} levels`);
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw badRequest(`${what} is not valid JSON`);
  }
}
