/**
 * `/devices/{id}/messages/devicebound`: a device's cloud-to-device messages over AMQP, from the same durable queue as
 * MQTT and HTTPS (core/cloud-to-device.ts), each locked while it is on the link and sent only with credit. The
 * device SDK settles with accepted (complete), rejected (reject) or released (abandon) (azure-iot-amqp-base
 * receiver_link.js); what is unsettled when the link goes is abandoned, so it comes again on the next link.
 */
import type { Delivery, EventContext, Message, Sender } from "rhea";
import { message as amqpMessage, string_to_uuid } from "rhea";
import type { CloudToDeviceMessage } from "../../core/cloud-to-device";
import { conditionOf } from "./conditions";
import type { DeviceLinkTarget } from "./device-routes";
import type { LinkContext, LinkHandler } from "./link-context";

/** The message as IoT Hub hands it to an AMQP device: its properties, `iothub-ack` when asked, the body as data. */
export function deviceboundMessage(message: CloudToDeviceMessage): Message {
  const application: Record<string, string> = { ...message.properties };
  if (message.ack !== "none") application["iothub-ack"] = message.ack;
  const amqp: Message = {
    to: `/devices/${message.deviceId}/messages/deviceBound`,
    absolute_expiry_time: new Date(message.expiryTimeMs),
    creation_time: new Date(message.enqueuedTimeMs),
    delivery_count: message.deliveryCount,
    application_properties: application,
    message_annotations: { "iothub-enqueuedtime": new Date(message.enqueuedTimeMs) },
    body: amqpMessage.data_section(Buffer.from(message.body, "base64")) as unknown,
  };
  if (message.messageId !== undefined) amqp.message_id = message.messageId;
  if (message.correlationId !== undefined) amqp.correlation_id = message.correlationId;
  if (message.userId !== undefined) amqp.user_id = message.userId;
  if (message.contentType !== undefined) amqp.content_type = message.contentType;
  if (message.contentEncoding !== undefined) amqp.content_encoding = message.contentEncoding;
  return amqp;
}

export function cloudToDeviceSender(context: LinkContext, link: Sender, target: DeviceLinkTarget): LinkHandler {
  const { deps, state } = context;
  const { deviceId } = target;
  const queue = deps.core.cloudToDevice;
  /** Deliveries on the link and the lock token that settles each. */
  const inFlight = new Map<Delivery, string>();
  let pumping = false;
  let again = false;
  let closed = false;

  const pump = async (): Promise<void> => {
    if (pumping) return void (again = true);
    pumping = true;
    try {
      do {
        again = false;
        while (!closed && link.sendable() && !state.congested()) {
          // A token may have expired since the link opened: the hub checks before each message.
          state.grants.requireIdentity(target.address);
          const received = await queue.receive(deviceId);
          if (!received) break;
          if (closed) {
            await queue.abandon(deviceId, received.lockToken);
            break;
          }
          state.batchWrites();
          const delivery = link.send(deviceboundMessage(received.message), string_to_uuid(received.lockToken));
          inFlight.set(delivery, received.lockToken);
          const id = (received.message.messageId ?? received.message.lockToken).slice(0, 64);
          deps.log(`AMQP C2D ${deviceId} ${id} sent (delivery count ${received.message.deliveryCount})`);
        }
      } while (again && !closed);
    } catch (err) {
      const { condition, description } = conditionOf(err);
      deps.log(`AMQP C2D ${deviceId} link closed: ${description}`);
      link.close({ condition, description });
    } finally {
      pumping = false;
    }
  };
  const onQueued = (queued: string) => {
    if (queued === deviceId) void pump();
  };
  queue.on("queued", onQueued);
  setImmediate(() => void pump());

  return {
    onSendable: () => void pump(),
    onOutcome(event: EventContext, outcome) {
      const lockToken = event.delivery && inFlight.get(event.delivery);
      if (!lockToken) return;
      inFlight.delete(event.delivery!);
      const settle =
        outcome === "accepted"
          ? queue.complete(deviceId, lockToken)
          : outcome === "rejected"
            ? queue.reject(deviceId, lockToken)
            : queue.abandon(deviceId, lockToken);
      settle
        .then((held) => deps.log(`AMQP C2D ${deviceId} ${outcome}${held ? "" : " after its lock was lost"}`))
        .catch((err: Error) => deps.log(`AMQP C2D ${deviceId} ${outcome} failed: ${err.message}`));
    },
    onClose() {
      closed = true;
      queue.off("queued", onQueued);
      for (const lockToken of inFlight.values()) void queue.abandon(deviceId, lockToken).catch(() => {});
      inFlight.clear();
    },
  };
}
