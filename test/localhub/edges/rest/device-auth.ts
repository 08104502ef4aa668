/**
 * X.509 over HTTPS: a device or module request without an Authorization header is authenticated by the client
 * certificate of its TLS connection (443 asks for one without insisting: listeners.ts), checked as on 8883.
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { unauthorized } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import { identityPath } from "../../core/records";
import type { Principal } from "../../core/sas";
import { checkX509 } from "../../core/x509";

export function x509Principal(
  core: HubCore,
  req: IncomingMessage,
  identity: { deviceId: string; moduleId?: string },
): Principal {
  const { deviceId, moduleId } = identity;
  const socket = req.socket as TLSSocket;
  const certificate = typeof socket.getPeerX509Certificate === "function" ? socket.getPeerX509Certificate() : undefined;
  if (!certificate) throw unauthorized("The Authorization header is missing and no client certificate was presented");
  try {
    checkX509(core.identities.find(deviceId, moduleId), { certificate, chainTrusted: socket.authorized }, deviceId);
  } catch (err) {
    throw unauthorized(`X.509 authentication of ${identityPath(deviceId, moduleId)} failed: ${(err as Error).message}`);
  }
  if (core.identities.find(deviceId)?.status === "disabled") throw unauthorized(`Device ${deviceId} is disabled`);
  return { kind: "identity", deviceId, moduleId, scope: identityPath(deviceId, moduleId) };
}
