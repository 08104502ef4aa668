/**
 * X.509 attestation: an individual enrollment holds the device's certificate itself; a group holds a signing (CA or
 * intermediate) certificate, or names a CA by `caReferences` (a file of the hub's client-CA folder, by name without
 * its extension). The device's certificate, or one of the certificates it sent with it, must be signed by it.
 */
import type { X509Certificate } from "node:crypto";
import { X509Certificate as Certificate } from "node:crypto";
import type { EnrollmentRecord } from "./dps-records";
import type { JsonObject } from "../twin-document";

/** Certificates a chain may climb through before it must have reached the CA. */
const MAX_CHAIN = 5;

export function certificateMatchesIndividual(record: EnrollmentRecord, certificate: X509Certificate): boolean {
  return Object.values(record.certificates ?? {}).some(
    (pem) => pem !== undefined && new Certificate(pem).fingerprint256 === certificate.fingerprint256,
  );
}

export function certificateMatchesGroup(
  record: EnrollmentRecord,
  peer: { certificate: X509Certificate; chain: X509Certificate[] },
  clientCas: () => Map<string, X509Certificate>,
): boolean {
  const attestation = record.json.attestation as JsonObject;
  if (attestation.type !== "x509") return false;
  const x509 = attestation.x509 as JsonObject;
  const authorities: X509Certificate[] = [];
  if (x509.caReferences) {
    const refs = x509.caReferences as JsonObject;
    const cas = clientCas();
    for (const name of [refs.primary, refs.secondary]) {
      const ca = typeof name === "string" ? cas.get(name) : undefined;
      if (ca) authorities.push(ca);
    }
  } else {
    for (const pem of Object.values(record.certificates ?? {})) if (pem) authorities.push(new Certificate(pem));
  }
  return authorities.some((ca) => chainsTo(peer.certificate, peer.chain, ca));
}

function chainsTo(leaf: X509Certificate, chain: X509Certificate[], ca: X509Certificate): boolean {
  let current = leaf;
  for (let step = 0; step < MAX_CHAIN; step++) {
    if (signedBy(current, ca)) return true;
    const next = chain.find((c) => c.fingerprint256 !== current.fingerprint256 && signedBy(current, c));
    if (!next) return false;
    current = next;
  }
  return false;
}

function signedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
