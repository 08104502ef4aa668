/**
 * X.509 authentication of a device or module: a `selfSigned` identity presents a certificate whose SHA-1 or SHA-256
 * thumbprint is its primary or secondary thumbprint; a `certificateAuthority` identity presents one that chains to a
 * CA the hub was given (DIR/client-cas/) and names the device in its subject's common name.
 */
import type { X509Certificate } from "node:crypto";
import { unauthorized } from "./errors";
import type { Identity } from "./records";

const hex = (fingerprint: string): string => fingerprint.replace(/:/g, "").toUpperCase();

export function checkX509(
  identity: Identity | undefined,
  peer: { certificate: X509Certificate; chainTrusted: boolean } | undefined,
  deviceId: string,
): void {
  if (!identity) throw unauthorized("no such device or module");
  if (!peer) throw unauthorized("no password and no client certificate");
  const { type, x509Thumbprint } = identity.authentication;
  if (type === "selfSigned") {
    const presented = [hex(peer.certificate.fingerprint), hex(peer.certificate.fingerprint256)];
    const registered = [x509Thumbprint.primaryThumbprint, x509Thumbprint.secondaryThumbprint].filter(Boolean);
    if (!registered.some((thumbprint) => presented.includes(thumbprint!.toUpperCase()))) {
      throw unauthorized("the client certificate's thumbprint is not the identity's");
    }
    return;
  }
  if (type === "certificateAuthority") {
    if (!peer.chainTrusted)
      throw unauthorized("the client certificate does not chain to a CA in the hub's client-cas folder");
    const commonName = /(?:^|\n)CN=([^\n]*)/.exec(peer.certificate.subject)?.[1];
    if (commonName !== deviceId)
      throw unauthorized(`the client certificate is for '${commonName ?? ""}', not '${deviceId}'`);
    return;
  }
  throw unauthorized("this identity authenticates with SAS tokens: the password is missing");
}
