/**
 * Device-to-cloud messages: stored in the event log (Event Hubs-compatible endpoint), then acknowledged (QoS 1).
 * The hub's message size limit is 256 KB, properties included.
 */
import type { IPublishPacket } from "mqtt-packet";
import { TelemetryTooLargeError } from "../../core/telemetry";
import type { Session } from "./session";

export const MAX_MESSAGE_BYTES = 256 * 1024;

export async function onTelemetry(session: Session, packet: IPublishPacket): Promise<void> {
  const size = packet.payload.length;
  if (size > MAX_MESSAGE_BYTES) return session.close(`message larger than ${MAX_MESSAGE_BYTES} bytes`);
  // The topic is devices/{id}[/modules/{mid}]/messages/events/{property bag}/: the bag is one segment ('/' in it is
  // encoded), and the SDK ends the topic with a '/'.
  const propertyBag = packet.topic.split("/")[session.moduleId === undefined ? 4 : 6] ?? "";
  let event;
  try {
    event = await session.edge.core.telemetry.receive({
      deviceId: session.deviceId,
      moduleId: session.moduleId,
      body: packet.payload as Buffer,
      propertyBag,
    });
  } catch (err) {
    if (err instanceof TelemetryTooLargeError) return session.close(err.message);
    throw err;
  }
  session.edge.log(
    `MQTT TELEMETRY ${session.key} ${size} bytes -> partition ${event.partition} #${event.sequenceNumber}`,
  );
  if (packet.qos === 1) session.send({ cmd: "puback", messageId: packet.messageId });
}
