/**
 * SUBSCRIBE and UNSUBSCRIBE: an identity may only listen to its own topics (topics.ts). A persistent session's
 * subscriptions are durable before the SUBACK, so that a reconnect after a crash still finds them.
 */
import type { ISubscribePacket, IUnsubscribePacket } from "mqtt-packet";
import { deliverCloudToDevice } from "./cloud-to-device";
import type { Session } from "./session";
import { METHODS_FILTER } from "./methods";
import { mayReceive } from "./topics";

const REFUSED = 128;

export async function onSubscribe(session: Session, packet: ISubscribePacket): Promise<void> {
  const granted = packet.subscriptions.map(({ topic, qos }) => {
    if (!mayReceive(topic, session.deviceId, session.moduleId)) return REFUSED;
    session.subscriptions.add(topic);
    return Math.min(qos, 1);
  });
  session.edge.log(
    `MQTT SUBSCRIBE ${session.key} ${packet.subscriptions.map((s, i) => `${s.topic}=${granted[i]}`).join(" ")}`,
  );
  await remember(session);
  session.send({ cmd: "suback", messageId: packet.messageId, granted });
  if (session.subscriptions.has(METHODS_FILTER)) session.edge.core.methods.available(session.key);
  deliverCloudToDevice(session, session.edge.core.cloudToDevice);
}

export async function onUnsubscribe(session: Session, packet: IUnsubscribePacket): Promise<void> {
  for (const topic of packet.unsubscriptions) session.subscriptions.delete(topic);
  await remember(session);
  session.send({ cmd: "unsuback", messageId: packet.messageId, granted: [] });
}

function remember(session: Session): Promise<void> {
  if (session.cleanSession) return Promise.resolve();
  return session.edge.core.sessions.save(session.key, [...session.subscriptions]);
}
