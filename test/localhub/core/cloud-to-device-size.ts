/**
 * How large a cloud-to-device message is, as IoT Hub counts it, and whether its properties fit the property bag a
 * device receives them in. Checked at send (core/cloud-to-device.ts) and for messages an older journal holds.
 */
import { HubError, badRequest } from "./errors";
import { MAX_CLOUD_TO_DEVICE_BYTES, cloudToDeviceTooLarge } from "./cloud-to-device-types";
import type { CloudToDeviceInput } from "./cloud-to-device-types";

/**
 * A device receives a message's properties URL-encoded in one property bag: over MQTT, in the topic, which holds at
 * most 65,535 bytes. The bag may take that less 1 KB, kept for `devices/{id}/messages/devicebound/` and `$.to`.
 */
export const MAX_MQTT_TOPIC_BYTES = 65_535;
export const MAX_PROPERTY_BAG_BYTES = MAX_MQTT_TOPIC_BYTES - 1024;
/** The latest time a JavaScript Date can hold (ECMA-262: 8.64e15 ms after 1970); an expiry past it is refused. */
const MAX_DATE_MS = 8.64e15;

/** A time a Date can hold: anything else (NaN from a timestamp rhea could not read, 2^62 ms) is not a date. */
export function isDate(ms: number): boolean {
  return Math.abs(ms) <= MAX_DATE_MS;
}

export type Sized = Pick<
  CloudToDeviceInput,
  "messageId" | "correlationId" | "userId" | "contentType" | "contentEncoding"
> & {
  ack?: string;
  properties?: Record<string, string>;
};

/**
 * A message's size as IoT Hub counts it ("Create and read IoT Hub messages", Message size): the body, the values of
 * the system properties, and the names and values of the application properties, in bytes.
 */
export function messageBytes(input: CloudToDeviceInput): number {
  const system = [input.messageId, input.correlationId, input.userId, input.contentType, input.contentEncoding];
  // `to` is not counted: the SDK sets it, and a sender could not fill 64 KB of body otherwise.
  system.push(input.ack);
  let size = input.body.length;
  for (const value of system) if (value) size += Buffer.byteLength(value);
  for (const [key, value] of Object.entries(input.properties ?? {})) size += Buffer.byteLength(key + value);
  return size;
}

/** The URL-encoded `key=value&...` bag a device receives the properties in (edges/mqtt/cloud-to-device.ts). */
export function propertyBagBytes(message: Sized): number {
  const pairs = Object.entries(message.properties ?? {});
  for (const [key, value] of [
    ["$.mid", message.messageId],
    ["$.cid", message.correlationId],
    ["$.uid", message.userId],
    ["$.ct", message.contentType],
    ["$.ce", message.contentEncoding],
    ["iothub-ack", message.ack],
  ] as const) {
    if (value) pairs.push([key, value]);
  }
  let size = 0;
  for (const [key, value] of pairs) size += encodedLength(key) + encodedLength(value) + 2;
  return size;
}

export function fitsPropertyBag(message: Sized): boolean {
  try {
    return propertyBagBytes(message) <= MAX_PROPERTY_BAG_BYTES;
  } catch {
    return false;
  }
}

function encodedLength(text: string): number {
  try {
    return encodeURIComponent(text).length;
  } catch {
    // A lone surrogate has no UTF-8 form: no transport could carry it.
    throw badRequest("A message property or id is not valid Unicode text");
  }
}

/** Refuses a message IoT Hub would refuse at send: too large, properties a device cannot receive, no date. */
export function checkSendable(input: CloudToDeviceInput): void {
  const size = messageBytes(input);
  if (size > MAX_CLOUD_TO_DEVICE_BYTES) throw cloudToDeviceTooLarge(size);
  const bag = propertyBagBytes(input);
  if (bag > MAX_PROPERTY_BAG_BYTES) {
    throw new HubError(
      413,
      "RequestEntityTooLarge",
      `The message's properties take ${bag} bytes URL-encoded; a device receives at most ${MAX_PROPERTY_BAG_BYTES}`,
    );
  }
  if (input.expiryTimeMs !== undefined && !isDate(input.expiryTimeMs)) {
    throw badRequest("The message's absolute expiry time is not a date");
  }
}
