/**
 * The TLS client certificate a device presented, with the certificates it sent along (its chain), from the
 * connection under an HTTPS request, an MQTT session or an AMQP connection.
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import type { DeviceCredentials } from "../../core/provisioning/attestation";

/** Certificates of a presented chain read at most: a device sends its own and one or two intermediates. */
const MAX_CHAIN_CERTIFICATES = 8;

export function peerCertificateOf(tls: TLSSocket | undefined): DeviceCredentials["certificate"] {
  const certificate = tls?.getPeerX509Certificate();
  if (!tls || !certificate) return undefined;
  const chain: X509Certificate[] = [];
  let current = tls.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  while (current?.issuerCertificate && current.issuerCertificate !== current && chain.length < MAX_CHAIN_CERTIFICATES) {
    current = current.issuerCertificate;
    if (current.raw) chain.push(new X509Certificate(current.raw));
  }
  return { certificate, chainTrusted: tls.authorized, chain };
}
