/**
 * The local hub's front door: everything the demo, the bench and the tests that drive it with the real SDKs need.
 * They import this file only; unit tests may reach inside the hub's rooms.
 */

// Starting and stopping a hub.
export { PortError, startHub } from "./hub";
export type { Hub, HubOptions } from "./hub";
export { ensureCertificates } from "./certs";

// What a client process needs to reach a hub on unprivileged ports.
export { PORT_REDIRECT_PATH, redirectEnv } from "./client-setup";

/**
 * Sends this process's connections to localhost on the standard ports to the ones a hub bound instead
 * (`setPortMap(hub.redirects)`; `{}` stops). port-redirect.cjs patches `net` when it loads, so it loads only here.
 */
export function setPortMap(map: Record<number, number>): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  (require("./port-redirect.cjs") as typeof import("./port-redirect.cjs")).setPortMap(map);
}

// Tokens, as a device or service SDK makes them, for `{host}/` + identityPath(device, module).
export { createSasToken } from "./core/sas";
export { identityPath } from "./core/records";

// The limits tests trip on purpose.
export { MAX_MESSAGES_PER_DEVICE } from "./core/cloud-to-device";
export type { CloudToDeviceMessage } from "./core/cloud-to-device";
export { MAX_JSON_DEPTH } from "./core/json-depth";
export { LIMITS as MQTT_LIMITS } from "./edges/mqtt/session";
export { MAX_WEBSOCKET_FRAME_BYTES } from "./edges/websocket";
export * as AMQP_LIMITS from "./edges/amqp/limits";
export { MAX_HTTP_HEADERS, MAX_HTTP_HEADER_BYTES } from "./listeners";

// What the event log keeps (telemetry read back).
export type { LoggedEvent } from "./store/event-log";

// A store of the caller's for `HubOptions.store`: a journal on a disk the caller controls, or its own Store.
export { JournalStore, diskIo } from "./store/journal";
export type { JournalFile, JournalIo } from "./store/journal";
export type { Store } from "./store/store";
export type { StoredRecord } from "./core/records";
