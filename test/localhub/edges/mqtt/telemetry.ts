/**
 * Device-to-cloud messages: acknowledged (QoS 1) and logged. The hub's message size limit is 256 KB.
 */
import type { IPublishPacket } from "mqtt-packet";
import type { Session } from "./session";

export const MAX_MESSAGE_BYTES = 256 * 1024;

export async function onTelemetry(session: Session, packet: IPublishPacket): Promise<void> {
  const size = packet.payload.length;
  if (size > MAX_MESSAGE_BYTES) return session.close(`message larger than ${MAX_MESSAGE_BYTES} bytes`);
  session.edge.log(`MQTT TELEMETRY ${session.key} ${size} bytes`);
  if (packet.qos === 1) session.send({ cmd: "puback", messageId: packet.messageId });
}
