/**
 * The twin topics: GET of the identity's own twin, PATCH of its reported properties (answered once durable), and
 * desired-property patches pushed to the identity after the core made them durable.
 */
import type { IPublishPacket } from "mqtt-packet";
import { HubError } from "../../core/errors";
import { parseBoundedJson } from "../../core/json-depth";
import type { DesiredChange } from "../../core/events";
import type { Json } from "../../core/twin-document";
import type { Session } from "./session";

export async function onTwinRequest(
  session: Session,
  packet: IPublishPacket,
  path: string,
  query: URLSearchParams,
): Promise<void> {
  const started = process.hrtime.bigint();
  const { twins } = session.edge.core;
  const rid = query.get("$rid") ?? "";
  let status: number;
  let topic: string;
  let body = "";
  try {
    if (path === "$iothub/twin/GET") {
      body = JSON.stringify(await twins.deviceTwin(session.deviceId, session.moduleId));
      status = 200;
      topic = `$iothub/twin/res/200/?$rid=${rid}`;
    } else {
      const version = await twins.patchReported(session.deviceId, session.moduleId, parseJson(packet.payload));
      status = 204;
      topic = `$iothub/twin/res/204/?$rid=${rid}&$version=${version}`;
    }
  } catch (err) {
    const hubError = err instanceof HubError ? err : new HubError(500, "ServerError", "the local hub failed");
    status = hubError.status;
    body = hubError.toMqttBody();
    topic = `$iothub/twin/res/${status}/?$rid=${rid}`;
  }
  if (packet.qos === 1) session.send({ cmd: "puback", messageId: packet.messageId });
  session.deliver(topic, body);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  session.edge.log(`MQTT PUBLISH ${session.key} ${path} ${status} ${ms.toFixed(1)}ms`);
}

function parseJson(payload: Buffer | string): Json {
  return parseBoundedJson(payload.toString(), "the reported properties patch");
}

export function pushDesired(session: Session, change: DesiredChange): void {
  session.deliver(
    `$iothub/twin/PATCH/properties/desired/?$version=${change.version}`,
    JSON.stringify({ ...change.patch, $version: change.version }),
  );
}
