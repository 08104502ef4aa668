/**
 * The TLS client certificate a device presented, with the certificates it sent along (its chain, kept by
 * listeners.ts when the handshake completed), from the connection under an HTTPS request or an MQTT session.
 */
import type { TLSSocket } from "node:tls";
import type { DeviceCredentials } from "../../core/provisioning/attestation";
import { presentedChain } from "../../listeners";

export function peerCertificateOf(tls: TLSSocket | undefined): DeviceCredentials["certificate"] {
  const certificate = tls?.getPeerX509Certificate();
  if (!tls || !certificate) return undefined;
  return { certificate, chainTrusted: tls.authorized, chain: presentedChain(tls) };
}
