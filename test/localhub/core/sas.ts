/**
 * Shared access signatures, checked as the real hub checks them: `sig` is HMAC-SHA256 over `sr + "\n" + se` with
 * the base64-decoded key of the named policy (`skn`) or, without `skn`, of the device or module in `sr`. The one
 * signature check of the hub: the AMQP edge's Event Hubs tokens use it too, with the key's text as the HMAC key.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { HubError, unauthorized } from "./errors";
import type { HubCore } from "./hub-core";
import type { Permission } from "./records";

export interface SasToken {
  sr: string;
  sig: string;
  se: number;
  skn?: string;
}

/**
 * Who a request or connection is: a policy with its rights, or one device or module (which may only connect).
 * `scope` is the resource path below the host that the token's `sr` names ("" for the whole hub): a token reaches
 * that path and what lies below it, by whole path segment.
 */
export type Principal =
  | { kind: "policy"; keyName: string; rights: Permission[]; scope: string }
  | { kind: "identity"; deviceId: string; moduleId?: string; scope: string };

export function parseSasToken(text: string | undefined): SasToken {
  const match = /^\s*SharedAccessSignature\s+(.+)$/.exec(text ?? "");
  if (!match) throw unauthorized("The Authorization header is missing or is not a SharedAccessSignature");
  const fields = new URLSearchParams(match[1]);
  const sr = fields.get("sr");
  const sig = fields.get("sig");
  const se = Number(fields.get("se"));
  if (!sr || !sig || !Number.isFinite(se)) throw unauthorized("The SharedAccessSignature needs sr, sig and se");
  return { sr, sig, se, skn: fields.get("skn") ?? undefined };
}

/** How a key becomes the HMAC key: IoT Hub decodes it from base64; Event Hubs takes its text as it is. */
export type KeyEncoding = "base64" | "utf8";

export function sign(sr: string, se: number, key: string, keyEncoding: KeyEncoding = "base64"): string {
  return createHmac("sha256", Buffer.from(key, keyEncoding)).update(`${sr}\n${se}`).digest("base64");
}

/** `sr` exactly as written in the token text (the signature covers it), not URL-decoded as parseSasToken gives it. */
export function rawSrOf(text: string | undefined, token: SasToken): string {
  return /(?:^|[\s&])sr=([^&]*)/.exec(text ?? "")?.[1] ?? token.sr;
}

/** Builds a token the way the SDKs do (for tests and the benchmark's lightweight clients). */
export function createSasToken(resource: string, base64Key: string, expirySeconds: number, keyName?: string): string {
  const sr = encodeURIComponent(resource);
  const sig = encodeURIComponent(sign(sr, expirySeconds, base64Key));
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${expirySeconds}${keyName ? `&skn=${encodeURIComponent(keyName)}` : ""}`;
}

/** True when the token's signature was made with one of `keys` (empty and missing keys never match). */
export function signatureMatches(
  token: SasToken,
  rawSr: string,
  keys: (string | null | undefined)[],
  keyEncoding: KeyEncoding = "base64",
): boolean {
  const given = Buffer.from(token.sig, "base64");
  return keys.some((key) => {
    if (!key) return false;
    const expected = Buffer.from(sign(rawSr, token.se, key, keyEncoding), "base64");
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}

/** The resource path a token covers (sr is already URL-decoded once), lowercased host, e.g. "localhost/devices/dev1/modules/m1". */
function resourceOf(sr: string): string {
  const decoded = sr.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  const slash = decoded.indexOf("/");
  return slash < 0 ? decoded.toLowerCase() : decoded.slice(0, slash).toLowerCase() + decoded.slice(slash);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** True when `resource` is `scope` or below it, by whole path segment; the empty scope (the whole hub) covers all. */
export function covers(scope: string, resource: string): boolean {
  return scope === "" || resource === scope || resource.startsWith(scope + "/");
}

/**
 * Checks a token against the registry. `rawSr` is `sr` exactly as written in the token (the signature covers it),
 * which is why authenticate() takes the header text and not a parsed URL.
 */
export function authenticate(core: HubCore, header: string | undefined, nowSeconds = Date.now() / 1000): Principal {
  const token = parseSasToken(header);
  const rawSr = rawSrOf(header, token);
  if (token.se < nowSeconds) throw unauthorized("The SharedAccessSignature has expired");
  const resource = resourceOf(token.sr);
  const host = core.hostName.toLowerCase();
  if (!covers(host, resource))
    throw unauthorized(`The token is for '${resource.split("/")[0]}', not for this hub '${host}'`);

  const scope = resource.slice(host.length).split("/").filter(Boolean).map(safeDecode).join("/");
  if (token.skn) {
    const policy = core.policies.find(token.skn);
    if (!policy || !signatureMatches(token, rawSr, [policy.primaryKey, policy.secondaryKey])) {
      throw unauthorized(`The signature does not match the key of policy '${token.skn}'`);
    }
    return { kind: "policy", keyName: policy.keyName, rights: policy.rights, scope };
  }

  const path = scope.split("/");
  if (path[0] !== "devices" || !path[1] || (path.length > 2 && (path[2] !== "modules" || !path[3]))) {
    throw unauthorized(
      "A token without skn must be scoped to a device or module: sr=<host>/devices/<id>[/modules/<id>]",
    );
  }
  const deviceId = path[1];
  const moduleId = path.length > 2 ? path[3] : undefined;
  const identity = core.identities.find(deviceId, moduleId);
  const { primaryKey, secondaryKey } = identity?.authentication.symmetricKey ?? {};
  if (!identity || !signatureMatches(token, rawSr, [primaryKey, secondaryKey])) {
    throw unauthorized(
      `The signature does not match the keys of ${moduleId ? `module ${deviceId}/${moduleId}` : `device ${deviceId}`}`,
    );
  }
  const device = core.identities.find(deviceId);
  if (device?.status === "disabled") throw unauthorized(`Device ${deviceId} is disabled`);
  return { kind: "identity", deviceId, moduleId, scope };
}

/** The rights a principal holds: a policy's own (RegistryWrite includes RegistryRead); a device or module's token
 * grants DeviceConnect only, as on the real hub, so registry and service APIs answer 401 to it. */
function rightsOf(principal: Principal): Set<Permission> {
  if (principal.kind === "identity") return new Set<Permission>(["DeviceConnect"]);
  const rights = new Set<Permission>(principal.rights);
  if (rights.has("RegistryWrite")) rights.add("RegistryRead");
  return rights;
}

/**
 * Checks that a principal holds one of the rights `needs` and that its token's scope covers `resource`, the path the
 * operation touches: `devices` for the registry as a whole, `devices/{id}` or `devices/{id}/modules/{mid}` for one identity.
 */
export function authorize(principal: Principal, needs: Permission[], resource: string): void {
  const rights = rightsOf(principal);
  if (!needs.some((right) => rights.has(right))) {
    const who = principal.kind === "policy" ? `Policy '${principal.keyName}'` : "A device or module token";
    throw new HubError(401, "IotHubUnauthorizedAccess", `${who} lacks the permission ${needs.join(" or ")}`);
  }
  if (!covers(principal.scope, resource)) {
    throw unauthorized(`The token is scoped to '${principal.scope}' and does not reach '${resource}'`);
  }
}
