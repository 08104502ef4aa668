/**
 * Who may use an AMQP link: SAS tokens given by CBS put-token or as the SASL PLAIN password, checked as REST checks
 * them (signature, expiry, audience), and the policy right each link needs. Event Hubs clients write the audience
 * as a URI (`sb://localhost:5671/<hub>/ConsumerGroups/...`), which the IoT Hub token checker does not take.
 */
import { HubError, unauthorized } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import type { Permission } from "../../core/records";
import { Principal, authenticate, covers, parseSasToken, rawSrOf, signatureMatches } from "../../core/sas";

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

/** The grants of one connection; a link is allowed when one live grant covers its address and has the right. */
export class ConnectionGrants {
  private readonly grants: Grant[] = [];

  add(grant: Grant): void {
    // A client renewing its token puts a new one for the same audience: keep the list short.
    const same = this.grants.findIndex((g) => g.scope === grant.scope);
    if (same >= 0) this.grants.splice(same, 1);
    if (this.grants.length >= 64) this.grants.shift();
    this.grants.push(grant);
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
}
