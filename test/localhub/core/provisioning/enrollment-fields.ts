/**
 * The fields of an individual enrollment or an enrollment group that a PUT may set, checked and completed as the
 * service stores them: ids, attestation (symmetric keys generated when left empty, X.509 certificates reduced to
 * their info), initial twin within the hub's twin limits, capabilities, provisioning status, reprovision policy.
 */
import { X509Certificate, randomBytes } from "node:crypto";
import { IDENTITY_ID_PATTERN } from "../identity-id";
import { HubError } from "../errors";
import { JsonObject, NEVER, isObject, newTwin, patchTags, replaceProperties } from "../twin-document";
import { dpsBadRequest } from "./dps-errors";

/** Azure: up to 128 characters, alphanumeric and `- . _ :`, no special character first or last, case-insensitive. */
const REGISTRATION_ID = /^[A-Za-z0-9](?:[A-Za-z0-9\-._:]{0,126}[A-Za-z0-9])?$/;

/** DPS generates symmetric keys of 64 random bytes (88 base64 characters), as the portal shows them. */
export const generateEnrollmentKey = (): string => randomBytes(64).toString("base64");

export function checkRegistrationId(id: unknown, what = "registrationId"): asserts id is string {
  if (typeof id !== "string" || !REGISTRATION_ID.test(id)) {
    throw dpsBadRequest(
      `${what} ${JSON.stringify(id ?? null).slice(0, 140)} is invalid: 1-128 letters, digits, '-', '.', '_' or ':', beginning and ending with a letter or digit`,
    );
  }
}

/** What the service stores for an attestation, plus the PEM certificates it keeps to itself (never answered). */
export interface CheckedAttestation {
  json: JsonObject;
  certificates?: { primary?: string; secondary?: string };
}

export function checkAttestation(value: unknown, kind: "individual" | "group"): CheckedAttestation {
  if (!isObject(value)) throw dpsBadRequest("attestation is required: {type: 'symmetricKey' | 'x509', ...}");
  if (value.type === "symmetricKey") {
    const keys = isObject(value.symmetricKey) ? value.symmetricKey : {};
    const key = (name: string): string => {
      const given = keys[name];
      if (given === undefined || given === null || given === "") return generateEnrollmentKey();
      const bytes = typeof given === "string" ? Buffer.from(given, "base64") : Buffer.alloc(0);
      if (typeof given !== "string" || bytes.length < 16 || bytes.length > 64 || bytes.toString("base64") !== given) {
        throw dpsBadRequest(`attestation.symmetricKey.${name} must be base64 of 16 to 64 bytes`);
      }
      return given;
    };
    return {
      json: {
        type: "symmetricKey",
        symmetricKey: { primaryKey: key("primaryKey"), secondaryKey: key("secondaryKey") },
      },
    };
  }
  if (value.type === "x509") return checkX509Attestation(value.x509, kind);
  if (value.type === "tpm") throw dpsBadRequest("TPM attestation is not served by the local hub");
  throw dpsBadRequest("attestation.type must be 'symmetricKey' or 'x509'");
}

function checkX509Attestation(value: unknown, kind: "individual" | "group"): CheckedAttestation {
  if (!isObject(value)) throw dpsBadRequest("attestation.x509 is required for type 'x509'");
  const field = kind === "individual" ? "clientCertificates" : "signingCertificates";
  if (kind === "group" && isObject(value.caReferences)) {
    const refs = value.caReferences;
    if (typeof refs.primary !== "string" || !refs.primary)
      throw dpsBadRequest("attestation.x509.caReferences.primary must name a CA certificate");
    const caReferences: JsonObject = { primary: refs.primary };
    if (typeof refs.secondary === "string" && refs.secondary) caReferences.secondary = refs.secondary;
    return { json: { type: "x509", x509: { caReferences } } };
  }
  const pair = value[field];
  if (!isObject(pair) || !isObject(pair.primary)) {
    throw dpsBadRequest(`attestation.x509.${field}.primary.certificate is required`);
  }
  const certificates: { primary?: string; secondary?: string } = {};
  const out: JsonObject = {};
  for (const which of ["primary", "secondary"] as const) {
    const entry = pair[which];
    if (entry === undefined || entry === null) continue;
    const text = isObject(entry) ? entry.certificate : undefined;
    if (typeof text !== "string")
      throw dpsBadRequest(`attestation.x509.${field}.${which}.certificate must be a PEM or base64 certificate`);
    const certificate = parseCertificate(text, `${field}.${which}`);
    certificates[which] = certificate.toString();
    out[which] = { info: certificateInfo(certificate) };
  }
  return { json: { type: "x509", x509: { [field]: out } }, certificates };
}

function parseCertificate(text: string, what: string): X509Certificate {
  const pem = text.includes("-----BEGIN")
    ? text
    : `-----BEGIN CERTIFICATE-----\n${text.replace(/\s+/g, "")}\n-----END CERTIFICATE-----\n`;
  try {
    return new X509Certificate(pem);
  } catch {
    throw dpsBadRequest(`attestation.x509.${what}.certificate is not a valid X.509 certificate`);
  }
}

/** X509CertificateInfo as the service answers it in place of the certificate. */
function certificateInfo(certificate: X509Certificate): JsonObject {
  const hex = (fingerprint: string) => fingerprint.replace(/:/g, "").toUpperCase();
  return {
    subjectName: certificate.subject.split("\n").reverse().join(", "),
    sha1Thumbprint: hex(certificate.fingerprint),
    sha256Thumbprint: hex(certificate.fingerprint256),
    issuerName: certificate.issuer.split("\n").reverse().join(", "),
    notBeforeUtc: new Date(certificate.validFrom).toISOString(),
    notAfterUtc: new Date(certificate.validTo).toISOString(),
    serialNumber: certificate.serialNumber.toUpperCase(),
    version: 3,
  };
}

/** The initial twin, checked against the hub's twin limits now, so that assigning it later cannot fail. */
export function checkInitialTwin(value: unknown): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw dpsBadRequest("initialTwin must be {tags, properties: {desired}}");
  const tags = value.tags ?? {};
  const properties = isObject(value.properties) ? value.properties : {};
  const desired = properties.desired ?? {};
  try {
    patchTags({}, tags);
    replaceProperties(newTwin(NEVER, false).desired, "desired", desired, NEVER);
  } catch (err) {
    if (err instanceof HubError) throw dpsBadRequest(`initialTwin: ${err.message}`);
    throw err;
  }
  return { tags, properties: { desired } };
}

export function checkDeviceId(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string" || !IDENTITY_ID_PATTERN.test(value)) {
    throw dpsBadRequest(`deviceId ${JSON.stringify(value).slice(0, 140)} is not a valid IoT Hub device id`);
  }
  return value;
}

export interface ReprovisionPolicy {
  updateHubAssignment: boolean;
  migrateDeviceData: boolean;
}

/** Azure's default: move to the newly chosen hub and take the device's data along. */
export function checkReprovisionPolicy(value: unknown): ReprovisionPolicy {
  if (value === undefined || value === null) return { updateHubAssignment: true, migrateDeviceData: true };
  if (!isObject(value)) throw dpsBadRequest("reprovisionPolicy must be {updateHubAssignment, migrateDeviceData}");
  const flag = (name: string) => {
    const given = value[name];
    if (given === undefined) return true;
    if (typeof given !== "boolean") throw dpsBadRequest(`reprovisionPolicy.${name} must be true or false`);
    return given;
  };
  return { updateHubAssignment: flag("updateHubAssignment"), migrateDeviceData: flag("migrateDeviceData") };
}

export function checkProvisioningStatus(value: unknown): "enabled" | "disabled" {
  if (value === undefined || value === null) return "enabled";
  if (value !== "enabled" && value !== "disabled")
    throw dpsBadRequest("provisioningStatus must be 'enabled' or 'disabled'");
  return value;
}

export function checkCapabilities(value: unknown): { iotEdge: boolean } {
  if (value === undefined || value === null) return { iotEdge: false };
  if (!isObject(value) || (value.iotEdge !== undefined && typeof value.iotEdge !== "boolean")) {
    throw dpsBadRequest("capabilities must be {iotEdge: true | false}");
  }
  return { iotEdge: value.iotEdge === true };
}
