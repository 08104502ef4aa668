/**
 * The wire JSON of devices, modules and twins, built in one place: what GET /devices, /modules and /twins answer,
 * in the field names and shapes the real hub uses.
 */
import type { Identity } from "./records";
import { JsonObject, deviceView, serviceView } from "./twin-document";

const connectionState = (connected: boolean): string => (connected ? "Connected" : "Disconnected");

/** IoT Edge scopes, present only on devices that have them. */
const scopes = (d: Identity): JsonObject =>
  d.deviceScope === undefined ? {} : { deviceScope: d.deviceScope, parentScopes: d.parentScopes ?? [] };

/** `queued`: the cloud-to-device messages waiting for the device (IoT Hub's cloudToDeviceMessageCount). */
export function deviceJson(d: Identity, connected: boolean, queued: number): JsonObject {
  return {
    deviceId: d.deviceId,
    generationId: d.generationId,
    etag: d.etag,
    connectionState: connectionState(connected),
    status: d.status ?? "enabled",
    statusReason: d.statusReason ?? null,
    connectionStateUpdatedTime: d.connectionStateUpdatedTime,
    statusUpdatedTime: d.statusUpdatedTime,
    lastActivityTime: d.lastActivityTime,
    cloudToDeviceMessageCount: queued,
    capabilities: d.capabilities ?? { iotEdge: false },
    ...scopes(d),
    authentication: d.authentication as unknown as JsonObject,
  };
}

export function moduleJson(m: Identity, connected: boolean): JsonObject {
  return {
    moduleId: m.moduleId ?? null,
    // Azure answers null for a module nobody manages (ModulesClient_DeviceTwinLifecycle.json).
    managedBy: m.managedBy || null,
    deviceId: m.deviceId,
    generationId: m.generationId,
    etag: m.etag,
    connectionState: connectionState(connected),
    connectionStateUpdatedTime: m.connectionStateUpdatedTime,
    lastActivityTime: m.lastActivityTime,
    // IoT Hub sends cloud-to-device messages to devices only, never to a module.
    cloudToDeviceMessageCount: 0,
    authentication: m.authentication as unknown as JsonObject,
  };
}

/** The service view of a twin; `device` gives a module twin its device's status; `queued` as for deviceJson. */
export function twinJson(identity: Identity, device: Identity, connected: boolean, queued: number): JsonObject {
  const twin = identity.twin;
  return {
    deviceId: identity.deviceId,
    ...(identity.moduleId === undefined ? {} : { moduleId: identity.moduleId }),
    etag: twin.etag,
    deviceEtag: identity.etag,
    status: device.status ?? "enabled",
    statusUpdateTime: device.statusUpdatedTime,
    connectionState: connectionState(connected),
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: identity.moduleId === undefined ? queued : 0,
    authenticationType: identity.authentication.type,
    x509Thumbprint: identity.authentication.x509Thumbprint,
    modelId: "",
    ...(identity.moduleId === undefined ? scopes(identity) : {}),
    version: twin.version,
    ...(Object.keys(twin.tags).length ? { tags: twin.tags } : {}),
    properties: { desired: serviceView(twin.desired), reported: serviceView(twin.reported) },
    // Device twins carry the device's capabilities (DevicesClient_DeviceTwinLifecycle.json); module twins read
    // with GET do not (ModulesClient_DeviceTwinLifecycle.json).
    ...(identity.moduleId === undefined ? { capabilities: identity.capabilities ?? { iotEdge: false } } : {}),
  };
}

/** The device's view of its own twin (MQTT twin GET): no metadata, no tags. */
export function deviceTwinJson(identity: Identity): JsonObject {
  return { desired: deviceView(identity.twin.desired), reported: deviceView(identity.twin.reported) };
}
