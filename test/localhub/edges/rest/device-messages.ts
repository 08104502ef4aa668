/**
 * Cloud-to-device messages for a device over HTTPS: receive (`GET .../messages/deviceBound`, the message locked for a
 * minute, its lock token as ETag), complete (`DELETE .../{lockToken}`), reject (`...?reject`) and abandon
 * (`POST .../{lockToken}/abandon`), on the core's one queue and its settlement rules (core/cloud-to-device.ts).
 */
import type { CloudToDeviceMessage, ReceivedMessage } from "../../core/cloud-to-device";
import { lockLost } from "../../core/cloud-to-device";
import type { HubCore } from "../../core/hub-core";
import { RawAnswer } from "./raw-answer";

/** Characters an HTTP header value may hold as Node writes it (latin1, no control characters but tab). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An HTTP token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `MM/dd/yyyy hh:mm:ss AM` in UTC, as azure-iot-cli-extension's recorded receive answer writes iothub-enqueuedtime. */
function enqueuedTimeText(ms: number): string {
  const at = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  const hours = at.getUTCHours() % 12 || 12;
  const date = `${two(at.getUTCMonth() + 1)}/${two(at.getUTCDate())}/${at.getUTCFullYear()}`;
  return `${date} ${hours}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())} ${at.getUTCHours() < 12 ? "AM" : "PM"}`;
}

/** A value or name no header can carry travels URL-encoded (the hub's choice: Azure's is not recorded). */
const headerValue = (text: string) => (HEADER_VALUE.test(text) ? text : encodeURIComponent(text));
const headerName = (text: string) => (HEADER_NAME.test(text) ? text : encodeURIComponent(text));

/**
 * The headers IoT Hub answers a receive with (the names azure-iot-cli-extension reads, MESSAGING_HTTP_C2D_SYSTEM_
 * PROPERTIES); azure-iot-http-base's toMessage() takes messageId, to, expiry, correlationId, `iothub-app-*` and ETag.
 */
export function receiveHeaders(received: ReceivedMessage): Record<string, string> {
  const message: CloudToDeviceMessage = received.message;
  const headers: Record<string, string> = {
    ETag: `"${received.lockToken}"`,
    "iothub-messageid": headerValue(message.messageId ?? ""),
    "iothub-correlationid": headerValue(message.correlationId ?? ""),
    "iothub-userid": headerValue(message.userId ?? ""),
    "iothub-to": `/devices/${encodeURIComponent(message.deviceId)}/messages/deviceBound`,
    "iothub-ack": message.ack,
    "iothub-expiry": new Date(message.expiryTimeMs).toISOString(),
    "iothub-enqueuedtime": enqueuedTimeText(message.enqueuedTimeMs),
    "iothub-deliverycount": String(message.deliveryCount),
    "iothub-sequencenumber": String(message.sequence + 1),
  };
  if (message.contentType) headers["Content-Type"] = headerValue(message.contentType);
  if (message.contentEncoding) headers["Content-Encoding"] = headerValue(message.contentEncoding);
  for (const [name, value] of Object.entries(message.properties)) {
    headers[`iothub-app-${headerName(name)}`] = headerValue(value);
  }
  return headers;
}

/** GET .../messages/deviceBound: 204 when nothing is waiting, else 200 with the message, locked for a minute. */
export async function receiveForDevice(core: HubCore, deviceId: string): Promise<RawAnswer | undefined> {
  const received = await core.cloudToDevice.receive(deviceId);
  if (!received) return undefined;
  return new RawAnswer(Buffer.from(received.message.body, "base64"), receiveHeaders(received));
}

/** DELETE .../{lockToken} (complete, or reject with `?reject`) and POST .../{lockToken}/abandon: 204 once durable. */
export async function settleForDevice(
  core: HubCore,
  deviceId: string,
  lockToken: string,
  outcome: "complete" | "reject" | "abandon",
): Promise<undefined> {
  const settled = await core.cloudToDevice[outcome](deviceId, lockToken);
  if (!settled) throw lockLost(deviceId, lockToken);
  return undefined;
}
