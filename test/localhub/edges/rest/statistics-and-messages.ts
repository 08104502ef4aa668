/**
 * REST routes beyond the registry and twins: the registry and service statistics, and a cloud-to-device message sent
 * over HTTPS, which lands in the same durable queue the AMQP send fills (core/cloud-to-device.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { CloudToDeviceInput } from "../../core/cloud-to-device";
import { badRequest } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import type { Permission } from "../../core/records";
import type { Route } from "./routes";

const REGISTRY_READ: Permission[] = ["RegistryRead"];
const SERVICE_CONNECT: Permission[] = ["ServiceConnect"];
/** Application properties of a REST C2D message travel as headers with this prefix (and come back with it off). */
const APP_PROPERTY_PREFIX = "iothub-app-";

/** The route for these paths; undefined for any other path, null for a method the path lacks. */
export function statisticsOrMessageRoute(core: HubCore, method: string, segments: string[]): Route | null | undefined {
  const [first, second, third, fourth, ...rest] = segments;
  if (first === "statistics" && third === undefined && (second === "devices" || second === "service")) {
    if (method !== "GET") return null;
    return second === "devices"
      ? { needs: REGISTRY_READ, resource: "devices", hasBody: false, run: () => registryStatistics(core) }
      : { needs: SERVICE_CONNECT, resource: "devices", hasBody: false, run: () => serviceStatistics(core) };
  }
  const deviceBound = third === "messages" && fourth?.toLowerCase() === "devicebound" && !rest.length;
  if (first === "devices" && second !== undefined && deviceBound) {
    if (method !== "POST") return null;
    return {
      needs: SERVICE_CONNECT,
      resource: `devices/${second}`,
      hasBody: "raw",
      run: async (request) => {
        core.identities.require(second);
        await core.cloudToDevice.enqueue(second, messageOf(request.bytes, request.headers));
        return undefined; // 204, as the device-side HTTPS API answers a completed message
      },
    };
  }
  return undefined;
}

/**
 * The shapes of the recorded sessions (azure-sdk-for-net SessionRecords StatisticsClient_Device_SuccessfulResponse.json
 * and StatisticsClient_Service_SuccessfulResponse.json): device counts of the registry, connected devices now.
 */
async function registryStatistics(core: HubCore) {
  await core.durable();
  let totalDeviceCount = 0;
  let disabledDeviceCount = 0;
  for (const device of core.identities.allDevices()) {
    totalDeviceCount++;
    if (device.status === "disabled") disabledDeviceCount++;
  }
  return { totalDeviceCount, enabledDeviceCount: totalDeviceCount - disabledDeviceCount, disabledDeviceCount };
}

async function serviceStatistics(core: HubCore) {
  await core.durable();
  let connectedDeviceCount = 0;
  for (const device of core.identities.allDevices()) if (core.identities.isConnected(device)) connectedDeviceCount++;
  return { connectedDeviceCount };
}

const single = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value || undefined;

/**
 * The message as headers and body carry it, in the names the device-side HTTPS API uses for the same fields
 * (`iothub-messageid`, `iothub-correlationid`, `iothub-userid`, `iothub-ack`, `iothub-expiry`, `Content-Type`,
 * `Content-Encoding`) and `iothub-app-{name}` for application properties (azure-sdk-for-rust sdk/iot_hub,
 * cloud-to-device message operation).
 */
function messageOf(body: Buffer, headers: IncomingHttpHeaders): CloudToDeviceInput {
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(APP_PROPERTY_PREFIX) && value !== undefined) {
      properties[name.slice(APP_PROPERTY_PREFIX.length)] = single(value) ?? "";
    }
  }
  const expiry = single(headers["iothub-expiry"]);
  const expiryTimeMs = expiry === undefined ? undefined : Date.parse(expiry);
  if (expiryTimeMs !== undefined && Number.isNaN(expiryTimeMs)) {
    throw badRequest("iothub-expiry must be a date and time (ISO 8601)");
  }
  return {
    body,
    messageId: single(headers["iothub-messageid"]),
    correlationId: single(headers["iothub-correlationid"]),
    userId: single(headers["iothub-userid"]),
    contentType: single(headers["content-type"]),
    contentEncoding: single(headers["content-encoding"]),
    ack: single(headers["iothub-ack"]),
    expiryTimeMs,
    properties,
  };
}
