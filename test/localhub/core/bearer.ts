/**
 * Microsoft Entra ID bearer tokens (`Authorization: Bearer <JWT>`, what `Registry.fromTokenCredential` sends), as
 * `--oauth basic` accepts them: the token's audience must be IoT Hub's and it must not have expired; then it has full
 * rights. Like Azurite's `--oauth basic`, the signature and issuer are not checked: there is no Entra ID offline.
 */
import { unauthorized } from "./errors";
import type { Principal } from "./sas";

/** The audience of a token for the scope `https://iothubs.azure.net/.default` (the SDKs' tokenScope). */
export const IOT_HUB_AUDIENCES = new Set(["https://iothubs.azure.net", "https://iothubs.azure.net/"]);
/** The audience of a token for the provisioning service's scope `https://azure-devices-provisioning.net/.default`. */
export const PROVISIONING_AUDIENCES = new Set([
  "https://azure-devices-provisioning.net",
  "https://azure-devices-provisioning.net/",
]);
/** A bearer token longer than this is refused before it is decoded (Entra ID tokens are 1-3 KB). */
export const MAX_BEARER_TOKEN_CHARS = 16 * 1024;
/** Clock skew allowed on `exp` and `nbf`, as Microsoft's token validation allows by default (5 minutes). */
const CLOCK_SKEW_SECONDS = 300;

export type OAuthMode = "basic" | undefined;

export const ENABLE_OAUTH_HINT = "start the hub with --oauth basic (npm run hub -- --oauth basic) to accept them";

export function isBearer(header: string | undefined): boolean {
  return /^\s*Bearer\s/i.test(header ?? "");
}

/**
 * The principal of a valid bearer token; a 401 in the hub's format for any other. `audiences`: IoT Hub's, or the
 * provisioning service's (core/provisioning/dps-auth.ts).
 */
export function authenticateBearer(
  header: string,
  mode: OAuthMode,
  nowSeconds = Date.now() / 1000,
  audiences: Set<string> = IOT_HUB_AUDIENCES,
): Principal {
  if (mode !== "basic") throw unauthorized(`Bearer tokens (Microsoft Entra ID) are not enabled: ${ENABLE_OAUTH_HINT}`);
  const token = header.replace(/^\s*Bearer\s+/i, "").trim();
  if (token.length > MAX_BEARER_TOKEN_CHARS) throw unauthorized("The bearer token is too long");
  const claims = decodeClaims(token);
  const given = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!given.some((aud) => typeof aud === "string" && audiences.has(aud))) {
    throw unauthorized(`The bearer token's audience is not ${[...audiences][0]}`);
  }
  if (typeof claims.exp !== "number" || claims.exp + CLOCK_SKEW_SECONDS < nowSeconds) {
    throw unauthorized("The bearer token has expired");
  }
  if (typeof claims.nbf === "number" && claims.nbf - CLOCK_SKEW_SECONDS > nowSeconds) {
    throw unauthorized("The bearer token is not valid yet");
  }
  return {
    kind: "policy",
    keyName: "Microsoft Entra ID token",
    rights: ["RegistryWrite", "ServiceConnect", "DeviceConnect"],
    scope: "",
  };
}

/** The claims of a JWT (`header.payload.signature`, base64url); the signature is not checked (see above). */
function decodeClaims(token: string): Record<string, unknown> {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((part) => /^[A-Za-z0-9_-]*$/.test(part)) || !parts[1]) {
    throw unauthorized("The bearer token is not a JWT (header.payload.signature)");
  }
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    if (claims && typeof claims === "object" && !Array.isArray(claims)) return claims as Record<string, unknown>;
  } catch {
    // Falls through to the same answer as a payload that is not an object.
  }
  throw unauthorized("The bearer token's payload is not a JSON object");
}
