/**
 * SASL PLAIN as IoT Hub takes it: username `{policy}@sas.root.{hub}`, password a SAS token of that policy (what the
 * "read device-to-cloud messages" samples send). ANONYMOUS, MSSBCBS and no SASL at all are allowed too: those
 * clients authenticate through CBS afterwards, and every link checks its own permission.
 */
import type { Connection } from "rhea";
import type { HubCore } from "../../core/hub-core";
import type { Permission } from "../../core/records";
import { checkToken, hubName } from "./auth";
import { ProvisioningLogin, isProvisioningUser, provisioningLogin } from "../dps/amqp";

export interface SaslPrincipal {
  kind: "policy";
  keyName: string;
  rights: Permission[];
  scope: string;
  expiresAtSeconds: number;
}

interface PlainServerMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  principal?: SaslPrincipal;
  /** A device registering with the provisioning service (edges/dps/amqp.ts), which shares this port. */
  provisioning?: ProvisioningLogin;
  start(response: Buffer | undefined): void;
}

/** Splits `\0user\0password` (the authorization id before the first NUL is ignored). */
function fields(response: Buffer | undefined): [string, string] | undefined {
  if (!response) return undefined;
  const parts = response.toString("utf8").split("\0");
  return parts.length === 3 ? [parts[1], parts[2]] : undefined;
}

/** A rhea server mechanism factory: checks the token once, keeps the principal on the mechanism object. */
export function plainMechanism(core: HubCore): () => PlainServerMechanism {
  return () => ({
    outcome: undefined,
    username: undefined,
    start(response) {
      this.outcome = false;
      const given = fields(response);
      if (given && isProvisioningUser(given[0])) {
        this.provisioning = provisioningLogin(core, given[0], given[1]);
        this.outcome = this.provisioning !== undefined;
        this.username = given[0];
        return;
      }
      const match = given && /^(.+)@sas\.root\.(.+)$/.exec(given[0]);
      if (!given || !match || match[2].toLowerCase() !== hubName(core.hostName).toLowerCase()) return;
      try {
        const grant = checkToken(core, given[1]);
        if (grant.principal.kind !== "policy" || grant.principal.keyName !== match[1]) return;
        this.principal = { ...grant.principal, scope: grant.scope, expiresAtSeconds: grant.expiresAtSeconds };
        this.outcome = true;
        this.username = given[0];
      } catch {
        // outcome false: rhea answers with SASL outcome "auth" and closes the connection.
      }
    },
  });
}

/** The principal SASL PLAIN established on a connection (rhea keeps the mechanism on its SASL layer). */
export function principalOf(connection: Connection): SaslPrincipal | undefined {
  const layer = (connection as unknown as { sasl_transport?: { selected?: { mechanism?: PlainServerMechanism } } })
    .sasl_transport;
  return layer?.selected?.mechanism?.principal;
}

/**
 * MSSBCBS, Microsoft's name for "I will authenticate through $cbs", which uamqp's CBS login asks for: no initial
 * response, no challenge, outcome ok (Azure/azure-uamqp-c src/sasl_mssbcbs.c). Like ANONYMOUS, it grants nothing.
 */
export function cbsMechanism(): { outcome: boolean; username: string; start(): void } {
  return { outcome: true, username: "MSSBCBS", start() {} };
}
