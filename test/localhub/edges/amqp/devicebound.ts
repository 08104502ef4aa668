/**
 * `/messages/devicebound`: the service SDK's `Client.send(deviceId, message)` sends here, `to` naming the device.
 * Each message is accepted once it is durable in the device's queue, or rejected with the condition the SDK turns
 * into its error (DeviceNotFoundError, DeviceMaximumQueueDepthExceededError, MessageTooLargeError).
 */
import type { EventContext, Message } from "rhea";
import { uuid_to_string } from "rhea";
import { badRequest } from "../../core/errors";
import { cloudToDeviceTooLarge } from "../../core/cloud-to-device";
import type { CloudToDeviceInput } from "../../core/cloud-to-device";
import { conditionOf } from "./conditions";
import { OVERSIZED } from "./incoming";
import type { LinkContext, LinkHandler } from "./link-context";

/** rhea gives a message id as a string, a number, or 16 bytes for a UUID (device telemetry uses it too). */
export function idText(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return id.length === 16 ? uuid_to_string(id) : id.toString("utf8");
  return typeof id === "string" || typeof id === "number" || typeof id === "bigint" ? String(id) : JSON.stringify(id);
}

export function bodyBytes(body: unknown): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  const section = body as { typecode?: number; content?: unknown };
  if (section.typecode === 0x75 && Buffer.isBuffer(section.content)) return section.content;
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
}

/** Reads the device id from `to` = `/devices/{id}/messages/devicebound`. */
function deviceOf(message: Message): string {
  const match = /^\/devices\/([^/]+)\/messages\/devicebound$/i.exec(String(message.to ?? ""));
  if (!match) throw badRequest(`'to' must be /devices/{deviceId}/messages/devicebound, not '${message.to}'`);
  try {
    return decodeURIComponent(match[1]);
  } catch {
    throw badRequest(`'to' holds a badly encoded device id`);
  }
}

function inputOf(message: Message): CloudToDeviceInput {
  const application = message.application_properties ?? {};
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(application)) if (key !== "iothub-ack") properties[key] = String(value);
  const expiry = message.absolute_expiry_time as Date | number | undefined;
  return {
    body: bodyBytes(message.body),
    messageId: idText(message.message_id),
    correlationId: idText(message.correlation_id),
    userId: message.user_id === undefined ? undefined : idText(message.user_id),
    contentType: message.content_type,
    contentEncoding: message.content_encoding,
    ack: application["iothub-ack"] === undefined ? undefined : String(application["iothub-ack"]),
    expiryTimeMs: expiry === undefined ? undefined : new Date(expiry).getTime(),
    properties,
  };
}

export function deviceboundReceiver(context: LinkContext): LinkHandler {
  const { deps, state } = context;
  state.grants.require("/messages/devicebound", "ServiceConnect");
  return {
    onMessage(event: EventContext) {
      const delivery = event.delivery!;
      let deviceId = "?";
      (async () => {
        if (event.message!.application_properties?.[OVERSIZED]) {
          throw cloudToDeviceTooLarge();
        }
        deviceId = deviceOf(event.message!);
        // A token may have expired since the link opened: the hub checks at every send.
        state.grants.require("/messages/devicebound", "ServiceConnect");
        const queued = await deps.core.cloudToDevice.enqueue(deviceId, inputOf(event.message!));
        delivery.accept();
        deps.log(`AMQP C2D ${state.label} -> ${deviceId} ${queued.body.length} base64 chars queued`);
      })().catch((err: unknown) => {
        const error = conditionOf(err);
        delivery.reject(error);
        deps.log(`AMQP C2D ${state.label} -> ${deviceId} refused: ${error.description}`);
      });
    },
  };
}
