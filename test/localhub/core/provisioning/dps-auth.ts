/**
 * Who may call the provisioning service: the service side signs with one of the DPS's own policies
 * (`provisioningserviceowner`, `sr={host}`, `skn`), a device signs `sr={idScope}/registrations/{registrationId}` with
 * `skn=registration` and its enrollment's key, or, in a group, the key derived from the group's (HMAC-SHA256 of the
 * registration id with the group key, base64), as Azure's "derive a device key" documents it.
 */
import { createHmac } from "node:crypto";
import { OAuthMode, PROVISIONING_AUDIENCES, authenticateBearer, isBearer } from "../bearer";
import { HubError } from "../errors";
import { covers, parseSasToken, rawSrOf, signatureMatches } from "../sas";
import { dpsUnauthorized } from "./dps-errors";
import type { DpsPolicy, DpsRight } from "./dps-records";

/** Everything but ServiceConfig is what provisioningserviceowner grants the SDK's calls. */
export const OWNER_RIGHTS: DpsRight[] = [
  "ServiceConfig",
  "EnrollmentRead",
  "EnrollmentWrite",
  "RegistrationStatusRead",
  "RegistrationStatusWrite",
];

export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  return createHmac("sha256", Buffer.from(groupKey, "base64")).update(registrationId, "utf8").digest("base64");
}

/**
 * Checks a service token; throws 401 (401002) unless it is a valid token of a policy holding one of `needs`, or,
 * with `--oauth basic`, a Microsoft Entra ID token for the provisioning service's audience (full rights, as the
 * Device Provisioning Service Data Contributor role gives; `ProvisioningServiceClient.fromTokenCredential`).
 */
export function authorizeService(
  policies: DpsPolicy[],
  hostName: string,
  header: string | undefined,
  needs: DpsRight[],
  oauth?: OAuthMode,
): void {
  if (isBearer(header)) {
    try {
      authenticateBearer(header!, oauth, Date.now() / 1000, PROVISIONING_AUDIENCES);
      return;
    } catch (err) {
      if (err instanceof HubError) throw dpsUnauthorized(err.message);
      throw err;
    }
  }
  const token = parseToken(header);
  if (token.se < Date.now() / 1000) throw dpsUnauthorized("The SharedAccessSignature has expired");
  const host = token.sr
    .replace(/^https?:\/\//, "")
    .split("/")[0]
    .toLowerCase();
  if (!covers(hostName.toLowerCase(), host)) throw dpsUnauthorized(`The token is for '${host}', not '${hostName}'`);
  const policy = policies.find((p) => p.keyName === token.skn);
  if (!policy || !signatureMatches(token, rawSrOf(header, token), [policy.primaryKey, policy.secondaryKey])) {
    throw dpsUnauthorized(`The signature does not match the key of provisioning policy '${token.skn ?? ""}'`);
  }
  if (!needs.some((right) => policy.rights.includes(right))) {
    throw dpsUnauthorized(`Policy '${policy.keyName}' lacks the right ${needs.join(" or ")}`);
  }
}

/** A device's registration token: parsed and checked for its resource; the caller checks the signature's key. */
export interface RegistrationToken {
  check(keys: (string | null | undefined)[]): boolean;
}

export function registrationToken(
  header: string | undefined,
  idScope: string,
  registrationId: string,
): RegistrationToken {
  const token = parseToken(header);
  if (token.se < Date.now() / 1000) throw dpsUnauthorized("The SharedAccessSignature has expired");
  const resource = `${idScope}/registrations/${registrationId}`;
  if (token.sr.toLowerCase() !== resource.toLowerCase()) {
    throw dpsUnauthorized(`The token's sr must be '${resource}'`);
  }
  if (token.skn !== "registration") throw dpsUnauthorized("The token's skn must be 'registration'");
  const rawSr = rawSrOf(header, token);
  return { check: (keys) => signatureMatches(token, rawSr, keys) };
}

function parseToken(header: string | undefined) {
  try {
    return parseSasToken(header);
  } catch (err) {
    throw dpsUnauthorized((err as Error).message);
  }
}
