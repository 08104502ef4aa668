/**
 * Which enrollment a registering device belongs to, and with which credentials it will then connect to the hub:
 * an individual enrollment first (as on Azure), else a group. Symmetric keys prove themselves by the SAS token's
 * signature; X.509 devices by their TLS client certificate (its thumbprint, or its chain to the group's CA).
 */
import type { X509Certificate } from "node:crypto";
import { deriveDeviceKey, registrationToken } from "./dps-auth";
import { dpsUnauthorized } from "./dps-errors";
import type { EnrollmentRecord } from "./dps-records";
import type { Enrollments } from "./enrollments";
import { certificateMatchesGroup, certificateMatchesIndividual } from "./x509-attestation";
import type { JsonObject } from "../twin-document";

/** How a device proved who it is: what the registration answers may carry, and what goes into the hub identity. */
export interface Attested {
  enrollment: EnrollmentRecord;
  groupId?: string;
  /** The hub identity's authentication. */
  authentication: JsonObject;
  /** The attestation part of the registration result (`symmetricKey` or `x509`). */
  result: JsonObject;
}

export interface DeviceCredentials {
  /** The Authorization header (HTTPS), MQTT password or AMQP SASL password: a SAS token, or none. */
  sasToken?: string;
  /** The TLS client certificate, and whether it chains to one of the hub's client CAs. */
  certificate?: { certificate: X509Certificate; chainTrusted: boolean; chain: X509Certificate[] };
}

const sasAuthentication = (primaryKey: string, secondaryKey: string): JsonObject => ({
  type: "sas",
  symmetricKey: { primaryKey, secondaryKey },
});

const keysOf = (record: EnrollmentRecord): { primaryKey: string; secondaryKey: string } | undefined => {
  const attestation = record.json.attestation as JsonObject;
  return attestation.type === "symmetricKey"
    ? (attestation.symmetricKey as { primaryKey: string; secondaryKey: string })
    : undefined;
};

export function attest(
  enrollments: Enrollments,
  idScope: string,
  registrationId: string,
  credentials: DeviceCredentials,
  clientCas: () => Map<string, X509Certificate>,
): Attested {
  const individual = enrollments.find("enrollment", registrationId);
  if (credentials.sasToken) {
    const token = registrationToken(credentials.sasToken, idScope, registrationId);
    const keys = individual && keysOf(individual);
    if (individual && keys) {
      if (!token.check([keys.primaryKey, keys.secondaryKey])) throw mismatch();
      return {
        enrollment: individual,
        authentication: sasAuthentication(keys.primaryKey, keys.secondaryKey),
        result: { symmetricKey: {} },
      };
    }
    for (const group of enrollments.all("enrollment-group")) {
      const groupKeys = keysOf(group);
      if (!groupKeys) continue;
      const primaryKey = deriveDeviceKey(groupKeys.primaryKey, registrationId);
      const secondaryKey = deriveDeviceKey(groupKeys.secondaryKey, registrationId);
      if (!token.check([primaryKey, secondaryKey])) continue;
      const groupId = group.json.enrollmentGroupId as string;
      return {
        enrollment: group,
        groupId,
        authentication: sasAuthentication(primaryKey, secondaryKey),
        result: { symmetricKey: { enrollmentGroupId: groupId } },
      };
    }
    throw mismatch();
  }
  const peer = credentials.certificate;
  if (!peer) throw dpsUnauthorized("Neither a SAS token nor a client certificate was presented");
  const thumbprint = peer.certificate.fingerprint256.replace(/:/g, "").toUpperCase();
  const authentication: JsonObject = {
    type: "selfSigned",
    x509Thumbprint: { primaryThumbprint: thumbprint, secondaryThumbprint: null },
  };
  const commonName = /(?:^|\n)CN=([^\n]*)/.exec(peer.certificate.subject)?.[1];
  if (commonName !== registrationId) {
    throw dpsUnauthorized(
      `The client certificate is for '${commonName ?? ""}', not for registration '${registrationId}'`,
    );
  }
  if (individual && certificateMatchesIndividual(individual, peer.certificate)) {
    return { enrollment: individual, authentication, result: { x509: {} } };
  }
  for (const group of enrollments.all("enrollment-group")) {
    if (!certificateMatchesGroup(group, peer, clientCas)) continue;
    const groupId = group.json.enrollmentGroupId as string;
    return { enrollment: group, groupId, authentication, result: { x509: { enrollmentGroupId: groupId } } };
  }
  throw dpsUnauthorized(`No enrollment of '${registrationId}' matches the client certificate`);
}

const mismatch = () =>
  dpsUnauthorized("The SAS token's signature does not match the keys of any enrollment of the device");
