/**
 * POST /devices: bulk create, update and delete of up to 100 devices. Each failure is reported and the rest goes on;
 * the answer comes once every change that succeeded is durable.
 */
import { HubError, badRequest } from "./errors";
import type { HubEvents } from "./events";
import type { Identities } from "./identities";
import { Json, JsonObject, isObject } from "./twin-document";

export const MAX_BULK_DEVICES = 100;

export async function bulkImport(
  identities: Identities,
  sync: () => Promise<void>,
  events: HubEvents,
  body: Json,
): Promise<JsonObject> {
  if (!Array.isArray(body) || body.length === 0 || body.length > MAX_BULK_DEVICES) {
    throw badRequest(`the body must be an array of 1 to ${MAX_BULK_DEVICES} devices`);
  }
  const errors: JsonObject[] = [];
  const revoked: string[] = [];
  for (const item of body) {
    const { id, deviceId: bodyId, importMode, eTag, etag, ...fields } = isObject(item) ? item : ({} as JsonObject);
    const given = id ?? bodyId;
    const deviceId = typeof given === "string" ? given : JSON.stringify(given ?? "");
    const device = { ...fields, deviceId };
    const mode = typeof importMode === "string" ? importMode.toLowerCase() : "";
    const modeText = JSON.stringify(importMode ?? null);
    const givenEtag = eTag ?? etag;
    try {
      if (mode.endsWith("ifmatchetag") && typeof givenEtag !== "string")
        throw badRequest(`importMode ${modeText} needs the device's eTag`);
      const ifMatch = mode.endsWith("ifmatchetag") ? (givenEtag as string) : "*";
      if (mode === "create" || mode === "update" || mode === "updateifmatchetag") {
        const { revoke } = identities.applyDevice(deviceId, device, mode === "create" ? undefined : ifMatch);
        if (revoke) revoked.push(deviceId);
      } else if (mode === "delete" || mode === "deleteifmatchetag") {
        identities.applyDeviceDelete(deviceId, ifMatch);
        revoked.push(deviceId);
      } else throw badRequest(`unknown importMode ${modeText}`);
    } catch (err) {
      if (!(err instanceof HubError)) throw err;
      errors.push({ deviceId, errorCode: err.code, errorStatus: err.message });
    }
  }
  await sync();
  for (const key of revoked) events.emit("revoked", { key, withModules: true });
  return { isSuccessful: errors.length === 0, errors, warnings: [] };
}
