/**
 * PUBLISH from a client: each topic family goes to its handler (twin requests, telemetry, method answers). A topic the identity does
 * not own ends the connection, as on the real hub.
 */
import type { IPublishPacket } from "mqtt-packet";
import type { Session } from "./session";
import { onMethodResponse } from "./methods";
import { onTelemetry } from "./telemetry";
import { splitTopic, ownTopicRoot } from "./topics";
import { onTwinRequest } from "./twin";

export async function onPublish(session: Session, packet: IPublishPacket): Promise<void> {
  if (packet.qos === 2) return session.close("QoS 2 is not supported");
  const { path, query } = splitTopic(packet.topic);
  if (path.startsWith(`${ownTopicRoot(session.deviceId, session.moduleId)}/messages/events`)) {
    return onTelemetry(session, packet);
  }
  if (path === "$iothub/twin/GET" || path === "$iothub/twin/PATCH/properties/reported") {
    return onTwinRequest(session, packet, path, query);
  }
  if (path.startsWith("$iothub/methods/res/")) return onMethodResponse(session, packet, path, query);
  session.close(`publish to a topic it does not own: ${packet.topic.slice(0, 200)}`);
}
