/**
 * The device-facing HTTPS API of IoT Hub, as `azure-iot-device-http` calls it: telemetry for devices and modules,
 * and a device's cloud-to-device messages. DeviceConnect, by SAS token or by the TLS client certificate (X.509).
 * Twins, methods and input messages are not offered over HTTPS by IoT Hub: the SDK refuses them itself.
 */
import type { HubCore } from "../../core/hub-core";
import type { Permission } from "../../core/records";
import { identityPath } from "../../core/records";
import { receiveForDevice, settleForDevice } from "./device-messages";
import { MAX_BATCH_REQUEST_BYTES, isBatch, receiveTelemetry } from "./device-telemetry";
import { MAX_BODY_BYTES } from "./body";
import type { Route } from "./routes";

const DEVICE_CONNECT: Permission[] = ["DeviceConnect"];

/**
 * The route for a device path; undefined for any other path (and for the service's `POST .../deviceBound`), null
 * for a method the path lacks.
 */
export function deviceRoute(core: HubCore, method: string, segments: string[]): Route | null | undefined {
  if (segments[0] !== "devices" || segments[1] === undefined) return undefined;
  const deviceId = segments[1];
  const forModule = segments[2] === "modules" && segments[3] !== undefined;
  const moduleId = forModule ? segments[3] : undefined;
  const [family, kind, lockToken, action, ...rest] = segments.slice(forModule ? 4 : 2);
  if (family !== "messages" || rest.length) return undefined;
  const identity = { deviceId, moduleId };
  const make = (hasBody: Route["hasBody"], run: Route["run"], maxBodyBytes?: Route["maxBodyBytes"]): Route => ({
    needs: DEVICE_CONNECT,
    resource: identityPath(deviceId, moduleId),
    hasBody,
    run,
    identity,
    maxBodyBytes,
  });

  if (kind === "events" && lockToken === undefined) {
    if (method !== "POST") return null;
    return make(
      "raw",
      async (r) => void (await receiveTelemetry(core, { ...identity, authType: r.authType }, r)),
      (headers) => (isBatch(headers) ? MAX_BATCH_REQUEST_BYTES : MAX_BODY_BYTES),
    );
  }
  if (kind?.toLowerCase() !== "devicebound" || forModule) return undefined;
  if (lockToken === undefined) {
    // POST on this path is the service's send (statistics-and-messages.ts).
    if (method === "POST") return undefined;
    return method === "GET" ? make(false, () => receiveForDevice(core, deviceId)) : null;
  }
  if (action === undefined) {
    if (method !== "DELETE") return null;
    return make(false, (r) =>
      settleForDevice(core, deviceId, lockToken, r.query.has("reject") ? "reject" : "complete"),
    );
  }
  if (action === "abandon") {
    return method === "POST" ? make(false, () => settleForDevice(core, deviceId, lockToken, "abandon")) : null;
  }
  return undefined;
}
