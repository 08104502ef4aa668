/**
 * The fields of a device or module that a PUT may set, checked as the real hub checks them: the identity id, how it
 * authenticates (SAS keys, X.509 thumbprints, or a certificate authority), and the IoT Edge scopes of a device.
 */
import { IDENTITY_ID_PATTERN as ID_PATTERN } from "./identity-id";
import { badRequest } from "./errors";
import { generateKey } from "./policies";
import type { Identity } from "./records";
import { JsonObject, isObject } from "./twin-document";

const THUMBPRINT = /^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/;
const AUTHENTICATION_TYPES = ["sas", "selfSigned", "certificateAuthority"] as const;
export type AuthenticationType = (typeof AUTHENTICATION_TYPES)[number];

export function checkId(kind: "device" | "module", id: unknown): asserts id is string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw badRequest(
      `${kind} id '${String(id).slice(0, 140)}' is invalid: 1-128 ASCII letters, digits or - . % _ * ? ! ( ) , : = @ $ '`,
    );
  }
}

function givenKeys(auth: JsonObject): { primaryKey: string; secondaryKey: string } | null {
  const keys = isObject(auth.symmetricKey) ? auth.symmetricKey : {};
  const primaryKey = typeof keys.primaryKey === "string" ? keys.primaryKey : "";
  const secondaryKey = typeof keys.secondaryKey === "string" ? keys.secondaryKey : "";
  if (!primaryKey && !secondaryKey) return null;
  for (const key of [primaryKey, secondaryKey]) {
    const bytes = Buffer.from(key, "base64");
    if (bytes.length < 16 || bytes.length > 64 || bytes.toString("base64") !== key) {
      throw badRequest("symmetric keys must be base64 of 16 to 64 bytes, both primary and secondary");
    }
  }
  return { primaryKey, secondaryKey };
}

function givenThumbprints(auth: JsonObject): Identity["authentication"]["x509Thumbprint"] {
  const prints = isObject(auth.x509Thumbprint) ? auth.x509Thumbprint : {};
  const read = (name: string): string | null => {
    const value = prints[name];
    if (value === undefined || value === null || value === "") return null;
    if (typeof value !== "string" || !THUMBPRINT.test(value)) {
      throw badRequest(`x509Thumbprint.${name} must be the hex SHA-1 (40) or SHA-256 (64 characters) of a certificate`);
    }
    return value.toUpperCase();
  };
  const result = { primaryThumbprint: read("primaryThumbprint"), secondaryThumbprint: read("secondaryThumbprint") };
  if (!result.primaryThumbprint && !result.secondaryThumbprint) {
    throw badRequest("authentication type selfSigned needs x509Thumbprint.primaryThumbprint or secondaryThumbprint");
  }
  return result;
}

/** The authentication of a created or updated identity; SAS keys the body leaves empty are generated (or kept). */
export function authenticationOf(body: JsonObject, existing?: Identity["authentication"]): Identity["authentication"] {
  const auth = isObject(body.authentication) ? body.authentication : {};
  const type = auth.type ?? existing?.type ?? "sas";
  if (typeof type !== "string" || !(AUTHENTICATION_TYPES as readonly string[]).includes(type)) {
    throw badRequest(`authentication type must be one of ${AUTHENTICATION_TYPES.join(", ")}`);
  }
  const noKeys = { primaryKey: null, secondaryKey: null };
  const noThumbprints = { primaryThumbprint: null, secondaryThumbprint: null };
  if (type === "selfSigned") return { type, symmetricKey: noKeys, x509Thumbprint: givenThumbprints(auth) };
  if (type === "certificateAuthority") return { type, symmetricKey: noKeys, x509Thumbprint: noThumbprints };
  const kept = existing?.type === "sas" ? existing.symmetricKey : undefined;
  const keys =
    givenKeys(auth) ??
    (kept?.primaryKey && kept.secondaryKey ? kept : { primaryKey: generateKey(), secondaryKey: generateKey() });
  return { type, symmetricKey: keys, x509Thumbprint: noThumbprints };
}

/** `ms-azure-iot-edge://{deviceId}-{generation}`, the scope an IoT Edge device gives its children. */
export const edgeScope = (deviceId: string, generationId: string): string =>
  `ms-azure-iot-edge://${deviceId}-${generationId}`;

/**
 * The scopes of a device: an Edge device has its own scope and may name one parent Edge device (nested Edge); a
 * leaf device's scope is its parent Edge device's. Every scope named must be an existing Edge device's.
 */
export function scopesOf(
  body: JsonObject,
  device: Identity,
  isEdgeScope: (scope: string) => boolean,
): { deviceScope?: string; parentScopes?: string[] } {
  const parents = body.parentScopes ?? device.parentScopes ?? [];
  if (!Array.isArray(parents) || parents.some((scope) => typeof scope !== "string") || parents.length > 1) {
    throw badRequest("parentScopes must be an array of at most one Edge device scope");
  }
  const parentScopes = parents as string[];
  for (const scope of parentScopes) {
    if (!isEdgeScope(scope))
      throw badRequest(`parent scope '${scope.slice(0, 200)}' is not the scope of an Edge device`);
  }
  if (device.capabilities?.iotEdge) {
    return { deviceScope: device.deviceScope ?? edgeScope(device.deviceId, device.generationId), parentScopes };
  }
  const given = typeof body.deviceScope === "string" && body.deviceScope ? body.deviceScope : undefined;
  if (given && parentScopes.length && parentScopes[0] !== given) {
    throw badRequest("a device's deviceScope must be the scope its parentScopes name");
  }
  const deviceScope = given ?? parentScopes[0] ?? (body.deviceScope === undefined ? device.deviceScope : undefined);
  if (deviceScope === undefined) return {};
  if (!isEdgeScope(deviceScope))
    throw badRequest(`device scope '${deviceScope.slice(0, 200)}' is not the scope of an Edge device`);
  return { deviceScope, parentScopes: [deviceScope] };
}
