/**
 * Device-to-cloud messages: stored in the event log (Event Hubs-compatible endpoint), then acknowledged (QoS 1).
 * The size limit is the core's MAX_TELEMETRY_BYTES (256 KB, properties included): checked here before anything else.
 */
import type { IPublishPacket } from "mqtt-packet";
import { MAX_TELEMETRY_BYTES, TelemetryTooLargeError } from "../../core/telemetry";
import type { Session } from "./session";

export async function onTelemetry(session: Session, packet: IPublishPacket): Promise<void> {
  const size = packet.payload.length;
  if (size > MAX_TELEMETRY_BYTES) return session.close(`message larger than ${MAX_TELEMETRY_BYTES} bytes`);
  // The topic is devices/{id}[/modules/{mid}]/messages/events/{property bag}/: the bag is one segment ('/' in it is
  // encoded), and the SDK ends the topic with a '/'.
  const propertyBag = packet.topic.split("/")[session.moduleId === undefined ? 4 : 6] ?? "";
  let event;
  try {
    event = await session.edge.core.telemetry.receive({
      deviceId: session.deviceId,
      moduleId: session.moduleId,
      authType: session.authType,
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
