/**
 * Device-to-cloud messages over HTTPS (`POST /devices/{id}[/modules/{mid}]/messages/events`), one or a batch, turned
 * into the property bag the core's telemetry intake reads, so that they reach the event log as MQTT telemetry does.
 */
import type { IncomingHttpHeaders } from "node:http";
import { HubError, badRequest } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import { MAX_TELEMETRY_BYTES, TelemetryTooLargeError } from "../../core/telemetry";
import { parseJson } from "./body";

/** The SDK's batch (`sendEventBatch`): a JSON array of `{"body": base64, "properties": {...}}`. */
export const BATCH_CONTENT_TYPE = "application/vnd.microsoft.iothub.json";
/**
 * A batch's JSON holds base64 bodies (4/3 of their bytes) and properties: its request may be this large, and the
 * messages it carries, decoded, at most MAX_TELEMETRY_BYTES together (IoT Hub: "batches up to 256 KB").
 */
export const MAX_BATCH_REQUEST_BYTES = 400 * 1024;

/** Request headers (and batch property names) that carry system properties, and their key in the property bag. */
const SYSTEM_PROPERTIES: Record<string, string> = {
  "iothub-messageid": "$.mid",
  "iothub-correlationid": "$.cid",
  "iothub-userid": "$.uid",
  "iothub-contenttype": "$.ct",
  "iothub-contentencoding": "$.ce",
};
const APP_PREFIX = "iothub-app-";

export const telemetryTooLarge = (bytes: number) =>
  new HubError(
    413,
    "MessageTooLarge",
    `A device-to-cloud message or batch may hold at most ${MAX_TELEMETRY_BYTES / 1024} KB with its properties, ` +
      `not ${bytes} bytes`,
  );

export function isBatch(headers: IncomingHttpHeaders): boolean {
  return (headers["content-type"] ?? "").toLowerCase().startsWith(BATCH_CONTENT_TYPE);
}

/** The URL-encoded bag (`%24.mid=1&temp=high`) of the system and application properties among `entries`. */
function bagOf(entries: [string, unknown][]): string {
  const pairs: string[] = [];
  for (const [name, value] of entries) {
    const text: unknown = Array.isArray(value) ? (value as unknown[])[0] : value;
    if (typeof text !== "string") continue;
    const lower = name.toLowerCase();
    const key = SYSTEM_PROPERTIES[lower] ?? (lower.startsWith(APP_PREFIX) ? name.slice(APP_PREFIX.length) : undefined);
    if (key) pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return pairs.join("&");
}

/** Headers as sent, names in their own case: an application property keeps the name the device gave it. */
function pairsOf(rawHeaders: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i], rawHeaders[i + 1]]);
  return pairs;
}

interface Outgoing {
  body: Buffer;
  propertyBag: string;
}

function batchOf(bytes: Buffer): Outgoing[] {
  const parsed = parseJson(bytes);
  if (!Array.isArray(parsed) || !parsed.length) {
    throw badRequest('A batch is a non-empty JSON array of {"body": "<base64>", "properties": {...}}');
  }
  return parsed.map((item, index) => {
    const element = item as { body?: unknown; properties?: unknown } | null;
    if (typeof element !== "object" || element === null || typeof element.body !== "string") {
      throw badRequest(`Message ${index} of the batch has no "body" string (base64)`);
    }
    const properties = element.properties ?? {};
    if (typeof properties !== "object" || properties === null || Array.isArray(properties)) {
      throw badRequest(`The "properties" of message ${index} of the batch are not an object`);
    }
    return { body: Buffer.from(element.body, "base64"), propertyBag: bagOf(Object.entries(properties)) };
  });
}

/**
 * Appends the request's message (or batch) to the event log; resolves once every one is durable. Sizes are checked
 * on the whole request before anything is stored: all or nothing, as far as the limits go.
 */
export async function receiveTelemetry(
  core: HubCore,
  identity: { deviceId: string; moduleId?: string; authType: string },
  request: { headers: IncomingHttpHeaders; rawHeaders: string[]; bytes: Buffer },
): Promise<void> {
  const { bytes } = request;
  const batch = isBatch(request.headers);
  if (!batch && bytes.length > MAX_TELEMETRY_BYTES) throw telemetryTooLarge(bytes.length);
  const messages = batch ? batchOf(bytes) : [{ body: bytes, propertyBag: bagOf(pairsOf(request.rawHeaders)) }];
  const total = messages.reduce((sum, m) => sum + m.body.length + m.propertyBag.length, 0);
  if (total > MAX_TELEMETRY_BYTES) throw telemetryTooLarge(total);
  try {
    await Promise.all(messages.map((message) => core.telemetry.receive({ ...identity, ...message })));
  } catch (err) {
    if (err instanceof TelemetryTooLargeError) throw telemetryTooLarge(total);
    throw err;
  }
}
