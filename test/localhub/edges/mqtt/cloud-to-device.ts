/**
 * Cloud-to-device delivery over MQTT: the device's queued messages are published at QoS 1 on
 * `devices/{id}/messages/devicebound/{properties}` once it subscribed, and completed by its PUBACK. What is not
 * acknowledged when the connection ends stays queued and goes out again on the next connection.
 */
import type { IPubackPacket } from "mqtt-packet";
import { MAX_MQTT_TOPIC_BYTES } from "../../core/cloud-to-device";
import type { CloudToDeviceMessage, CloudToDeviceQueue } from "../../core/cloud-to-device";
import type { Session } from "./session";
import { topicMatches } from "./topics";

/** Messages published and not yet acknowledged on one connection (the real hub keeps a similar window). */
export const MAX_IN_FLIGHT = 16;

interface Delivery {
  /** MQTT packet id -> lock token of the message sent with it. */
  inFlight: Map<number, string>;
  nextPacketId: number;
}

const deliveries = new WeakMap<Session, Delivery>();

function deliveryOf(session: Session): Delivery {
  let delivery = deliveries.get(session);
  if (!delivery) deliveries.set(session, (delivery = { inFlight: new Map(), nextPacketId: 1 }));
  return delivery;
}

/**
 * Publishes the device's pending messages it has not been sent on this connection, up to MAX_IN_FLIGHT. Call after
 * CONNACK (a persistent session keeps its subscription), after SUBACK, and when the queue says 'queued'.
 */
export function deliverCloudToDevice(session: Session, queue: CloudToDeviceQueue): void {
  if (session.isClosed || !session.connected || session.moduleId !== undefined) return;
  const probe = `devices/${session.deviceId}/messages/devicebound/x`;
  if (![...session.subscriptions].some((filter) => topicMatches(filter, probe))) return;
  const delivery = deliveryOf(session);
  const sent = new Set(delivery.inFlight.values());
  for (const message of queue.pendingFor(session.deviceId)) {
    if (delivery.inFlight.size >= MAX_IN_FLIGHT) return;
    if (sent.has(message.lockToken)) continue;
    const topic = topicIfItFits(message);
    if (topic === undefined) {
      // Sent anyway, a topic past 65,535 bytes would corrupt the stream and wedge the device for good.
      queue.undeliverable(session.deviceId, message.lockToken, "its topic would exceed 65,535 bytes");
      continue;
    }
    if (!queue.delivering(session.deviceId, message.lockToken)) continue;
    const packetId = delivery.nextPacketId;
    // Packet ids are 1..65535 and must not collide with one still in flight.
    do delivery.nextPacketId = (delivery.nextPacketId % 65_535) + 1;
    while (delivery.inFlight.has(delivery.nextPacketId));
    delivery.inFlight.set(packetId, message.lockToken);
    session.send({
      cmd: "publish",
      topic,
      payload: Buffer.from(message.body, "base64"),
      qos: 1,
      messageId: packetId,
      retain: false,
      dup: queue.attemptsOf(message) > 1,
    });
    session.edge.log(
      `MQTT C2D ${session.key} ${(message.messageId ?? message.lockToken).slice(0, 64)} sent (packet ${packetId})`,
    );
  }
}

/** PUBACK from the device: the message it acknowledges is complete (feedback Success where asked). */
export async function onCloudToDevicePuback(
  session: Session,
  packet: IPubackPacket,
  queue: CloudToDeviceQueue,
): Promise<void> {
  const delivery = deliveries.get(session);
  const lockToken = packet.messageId === undefined ? undefined : delivery?.inFlight.get(packet.messageId);
  if (!delivery || lockToken === undefined) return;
  delivery.inFlight.delete(packet.messageId!);
  await queue.complete(session.deviceId, lockToken);
  session.edge.log(`MQTT C2D ${session.key} packet ${packet.messageId} completed`);
  deliverCloudToDevice(session, queue);
}

function topicIfItFits(message: CloudToDeviceMessage): string | undefined {
  try {
    const topic = deviceboundTopic(message);
    return Buffer.byteLength(topic) <= MAX_MQTT_TOPIC_BYTES ? topic : undefined;
  } catch {
    return undefined; // a lone surrogate: encodeURIComponent throws, and no topic can carry it
  }
}

/**
 * The MQTT topic IoT Hub publishes a message on: `devices/{id}/messages/devicebound/{properties}`, the properties
 * URL-encoded (`$.mid`, `$.cid`, `$.to`, `$.ct`, `$.ce`, `$.uid`, `iothub-ack`, then the application properties).
 * `iothub-ack` is there only when the sender asked for feedback: Azure writes no `iothub-ack=none`.
 */
export function deviceboundTopic(message: CloudToDeviceMessage): string {
  const pairs: [string, string | undefined][] = [
    ["$.mid", message.messageId],
    ["$.cid", message.correlationId],
    ["$.uid", message.userId],
    ["$.to", `/devices/${message.deviceId}/messages/deviceBound`],
    ["$.ct", message.contentType],
    ["$.ce", message.contentEncoding],
    ["iothub-ack", message.ack === "none" ? undefined : message.ack],
    ...Object.entries(message.properties),
  ];
  const properties = pairs
    .filter((pair): pair is [string, string] => pair[1] !== undefined && pair[1] !== "")
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
  return `devices/${message.deviceId}/messages/devicebound/${properties}`;
}
