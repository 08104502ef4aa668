/**
 * @summary The peers bench's load generator as its own process: N bare MQTT senders (mqtt-packet over node:tls, the
 * same bytes for every broker), each publishing its share at QoS 1 with WINDOW in flight.
 *
 * IPC: { host, port, senders: [{ deviceId, key }], perSender, topicSuffix }  ->  { connected }
 *      "go"  ->  { started: t, acknowledged: t }   (wall-clock ms: first byte written, last PUBACK read)
 */
import { blast, connectSender } from "./messaging-clients";
import { wallNow } from "./peer-children";

export interface LoadPlan {
  host: string;
  port: number;
  senders: { deviceId: string; key: string }[];
  perSender: number;
  topicSuffix: string;
}

process.once("message", (plan: LoadPlan) => {
  void (async () => {
    const sockets = await Promise.all(
      plan.senders.map(({ deviceId, key }) => connectSender(plan.host, plan.port, deviceId, key)),
    );
    process.send!({ connected: sockets.length });
    await new Promise((resolve) => process.once("message", resolve));
    const started = wallNow();
    await Promise.all(
      sockets.map((socket, i) =>
        blast(socket, `devices/${plan.senders[i].deviceId}/messages/events/${plan.topicSuffix}`, plan.perSender),
      ),
    );
    process.send!({ started, acknowledged: wallNow() });
  })().catch((err: Error) => {
    console.error(`load generator: ${err.message}`);
    process.exit(1);
  });
});
process.on("disconnect", () => process.exit(0));
