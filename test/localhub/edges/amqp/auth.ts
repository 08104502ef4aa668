/**
 * Who may use an AMQP link: SAS tokens given by CBS put-token or as the SASL PLAIN password, checked as REST checks
 * them (signature, expiry, audience), the policy right each link needs, and which device or module a device link
 * acts as (its token, or the TLS client certificate of an X.509 identity). Event Hubs clients write the audience as
 * a URI (`sb://localhost:5671/<hub>/ConsumerGroups/...`), which the IoT Hub token checker does not take.
 */
import type { X509Certificate } from "node:crypto";
import { HubError, unauthorized } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import type { Permission } from "../../core/records";
import { Principal, authenticate, covers, parseSasToken, rawSrOf, signatureMatches } from "../../core/sas";
import { checkX509 } from "../../core/x509";

/** What one token grants on a connection: a principal, below a path, until a time. */
export interface Grant {
  principal: Principal;
  /** The address path the token covers ("" covers the whole hub). */
  scope: string;
  expiresAtSeconds: number;
}

/** The Event Hubs entity name of the compatible endpoint: the IoT hub's name, the first label of its host name. */
export function hubName(hostName: string): string {
  return hostName.split(".")[0];
}

/** An address or audience as a path: scheme, host and port dropped, no leading or trailing slash, lower case. */
export function addressPath(address: string): string {
  let text = address.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(text);
  if (scheme) text = text.slice(scheme[0].length);
  return text.replace(/^\/+|\/+$/g, "").toLowerCase();
}

/**
 * The path a token's `sr` or a CBS audience covers. URI style (`sb://host:port/path`) drops scheme, host and port;
 * IoT Hub style (`host/path`) drops the host. "" is the whole hub.
 */
export function scopeOf(text: string, hostName: string): string {
  const path = addressPath(text);
  if (uriHost(text) !== undefined) return path;
  const host = hostName.toLowerCase();
  return path === host ? "" : path.startsWith(host + "/") ? path.slice(host.length + 1) : path;
}

/** The host of a URI-style `sr` (without port), or undefined for the IoT Hub style `host/path`. */
function uriHost(sr: string): string | undefined {
  return /^[a-z][a-z0-9+.-]*:\/\/([^/:]*)/i.exec(sr)?.[1]?.toLowerCase();
}

/** Checks a SAS token and tells what it grants; throws HubError 401 with the reason otherwise. */
export function checkToken(core: HubCore, token: string, nowSeconds = Date.now() / 1000): Grant {
  const parsed = parseSasToken(token);
  const host = uriHost(parsed.sr);
  if (host === undefined) {
    const principal = authenticate(core, token, nowSeconds);
    return { principal, scope: scopeOf(parsed.sr, core.hostName), expiresAtSeconds: parsed.se };
  }
  if (parsed.se < nowSeconds) throw unauthorized("The SharedAccessSignature has expired");
  if (host !== core.hostName.toLowerCase()) throw unauthorized(`The token is for '${host}', not for this hub`);
  const policy = parsed.skn ? core.policies.find(parsed.skn) : undefined;
  // Event Hubs signs with the key's text as it is, where IoT Hub first decodes it from base64.
  const matches = signatureMatches(parsed, rawSrOf(token, parsed), [policy?.primaryKey, policy?.secondaryKey], "utf8");
  if (!policy || !matches) throw unauthorized(`The signature does not match the key of policy '${parsed.skn ?? ""}'`);
  const scope = addressPath(parsed.sr);
  return {
    principal: { kind: "policy", keyName: policy.keyName, rights: policy.rights, scope },
    scope,
    expiresAtSeconds: parsed.se,
  };
}

/** The device or module a device link acts as. */
export interface DeviceIdentity {
  deviceId: string;
  moduleId?: string;
}

/** A device link's address split: `/devices/{id}[/modules/{mid}]/{rest}`, ids as written (case kept). */
export interface DeviceAddress extends DeviceIdentity {
  rest: string;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Splits a device link address (the SDK writes ids as they are; a URL-encoded id is decoded); undefined otherwise. */
export function deviceAddress(address: string): DeviceAddress | undefined {
  let text = address.trim();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(text);
  if (scheme) text = text.slice(scheme[0].length);
  const match = /^\/*devices\/([^/]+)(?:\/modules\/([^/]+))?\/(.+?)\/*$/i.exec(text);
  if (!match || match[2]?.toLowerCase() === "modules") return undefined;
  const deviceId = decodeSegment(match[1]);
  const moduleId = match[2] === undefined ? undefined : decodeSegment(match[2]);
  return { deviceId, ...(moduleId === undefined ? {} : { moduleId }), rest: match[3].toLowerCase() };
}

/** What a connection knows of its transport and tells the edge (server.ts, device-connections.ts). */
export interface GrantsContext {
  core: HubCore;
  /** The TLS client certificate, if the client sent one (X.509 identities authenticate with it). */
  peer(): { certificate: X509Certificate; chainTrusted: boolean; chain?: X509Certificate[] } | undefined;
  /** The connection now acts as this identity: one connection per identity, connection state in the registry. */
  claim(identity: DeviceIdentity): void;
}

const sameIdentity = (a: DeviceIdentity, b: DeviceIdentity) => a.deviceId === b.deviceId && a.moduleId === b.moduleId;

/** The grants of one connection; a link is allowed when one live grant covers its address and has the right. */
export class ConnectionGrants {
  private readonly grants: Grant[] = [];
  /** Identities this connection authenticated by client certificate (valid as long as the TLS connection). */
  private readonly certified: DeviceIdentity[] = [];

  constructor(private readonly context?: GrantsContext) {}

  add(grant: Grant): void {
    // A client renewing its token puts a new one for the same audience: keep the list short.
    const same = this.grants.findIndex((g) => g.scope === grant.scope);
    if (same >= 0) this.grants.splice(same, 1);
    if (this.grants.length >= 64) this.grants.shift();
    this.grants.push(grant);
    // A device's or module's own token: the connection is now that identity's (renewals claim it again, harmlessly).
    if (grant.principal.kind === "identity") this.context?.claim(grant.principal);
  }

  /** Throws a HubError 401 naming what is missing when no live grant lets the connection use `address`. */
  require(address: string, right: Permission, nowSeconds = Date.now() / 1000): Principal {
    const path = addressPath(address);
    const live = this.grants.filter((g) => g.expiresAtSeconds >= nowSeconds && covers(g.scope, path));
    if (!live.length) throw unauthorized(`No valid token for '${address}': put one on $cbs first (or expired)`);
    const allowed = live.find((g) => g.principal.kind === "policy" && g.principal.rights.includes(right));
    if (!allowed) {
      const who = live[0].principal;
      const name = who.kind === "policy" ? `Policy '${who.keyName}'` : `The token of ${who.deviceId}`;
      throw new HubError(401, "IotHubUnauthorizedAccess", `${name} lacks the permission ${right} for '${address}'`);
    }
    return allowed.principal;
  }

  /**
   * Which device or module a link on this connection may act as for a device address
   * (`/devices/{id}[/modules/{mid}]/...`): a live token of exactly that identity (a device's token does not reach its
   * modules), a policy token with DeviceConnect that covers it, or the identity's X.509 client certificate. Throws a
   * HubError 401 naming what is missing; call it at attach and again at each message (tokens expire).
   */
  requireIdentity(address: string, nowSeconds = Date.now() / 1000): DeviceIdentity {
    const target = deviceAddress(address);
    if (!target) throw new HubError(404, "NotFound", `'${address.slice(0, 200)}' is not a device address`);
    const identity: DeviceIdentity = { deviceId: target.deviceId, moduleId: target.moduleId };
    const live = this.grants.filter((g) => g.expiresAtSeconds >= nowSeconds);
    const own = live.some((g) => g.principal.kind === "identity" && sameIdentity(g.principal, identity));
    const path = addressPath(address);
    const policy = live.some(
      (g) => g.principal.kind === "policy" && g.principal.rights.includes("DeviceConnect") && covers(g.scope, path),
    );
    if (own || policy || this.certified.some((c) => sameIdentity(c, identity)) || this.certify(identity)) {
      this.context?.claim(identity);
      return identity;
    }
    const who = identity.moduleId ? `module ${identity.deviceId}/${identity.moduleId}` : `device ${identity.deviceId}`;
    const expired = this.grants.some((g) => g.principal.kind === "identity" && sameIdentity(g.principal, identity));
    throw unauthorized(
      expired
        ? `The token of ${who} has expired: put a new one on $cbs`
        : `No valid token for ${who}: put one on $cbs for '${address.slice(0, 200)}' first, or connect with its X.509 certificate`,
    );
  }

  /** How the connection authenticated `identity`, as telemetry's `iothub-connection-auth-method` names it. */
  authTypeOf(identity: DeviceIdentity): "sas" | "x509" {
    return this.certified.some((c) => sameIdentity(c, identity)) ? "x509" : "sas";
  }

  /** An X.509 identity named by a link: its certificate must be the one this TLS connection presented. */
  private certify(identity: DeviceIdentity): boolean {
    const peer = this.context?.peer();
    if (!peer || !this.context) return false;
    const record = this.context.core.identities.find(identity.deviceId, identity.moduleId);
    if (!record || record.authentication.type === "sas") return false;
    checkX509(record, peer, identity.deviceId);
    if (this.context.core.identities.find(identity.deviceId)?.status === "disabled") {
      throw unauthorized(`Device ${identity.deviceId} is disabled`);
    }
    this.certified.push(identity);
    return true;
  }

  /** The TLS client certificate of the connection, if it sent one (the provisioning edge attests devices with it). */
  peerCertificate(): ReturnType<GrantsContext["peer"]> {
    return this.context?.peer();
  }

  /** The identities this connection holds a grant for (tokens or certificates). */
  identities(): DeviceIdentity[] {
    const found: DeviceIdentity[] = [...this.certified];
    for (const g of this.grants) if (g.principal.kind === "identity") found.push(g.principal);
    return found;
  }
}
