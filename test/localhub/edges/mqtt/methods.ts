/**
 * Direct methods over MQTT: the hub publishes `$iothub/methods/POST/{name}/?$rid={rid}` to the identity (when it has
 * subscribed to `$iothub/methods/POST/#`), and the device answers on `$iothub/methods/res/{status}/?$rid={rid}`.
 */
import type { IPublishPacket } from "mqtt-packet";
import { HubError } from "../../core/errors";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../../core/json-depth";
import { MAX_METHOD_PAYLOAD_BYTES, type MethodRequest } from "../../core/methods";
import type { Json } from "../../core/twin-document";
import type { Session } from "./session";
import { topicMatches } from "./topics";

export const METHODS_FILTER = "$iothub/methods/POST/#";

/** Sends a method call to the session; false when it has not subscribed to methods (the call waits). */
export function deliverMethod(session: Session, request: MethodRequest): boolean {
  const topic = `$iothub/methods/POST/${request.methodName}/?$rid=${request.rid}`;
  if (![...session.subscriptions].some((filter) => topicMatches(filter, topic))) return false;
  session.send({ cmd: "publish", topic, payload: JSON.stringify(request.payload), qos: 0, retain: false, dup: false });
  session.edge.log(`MQTT METHOD ${session.key} ${request.methodName} rid=${request.rid} sent`);
  return true;
}

/** `$iothub/methods/res/{status}/?$rid={rid}` from the device. */
export function onMethodResponse(session: Session, packet: IPublishPacket, path: string, query: URLSearchParams): void {
  if (packet.qos === 1) session.send({ cmd: "puback", messageId: packet.messageId });
  const status = Number(path.slice("$iothub/methods/res/".length));
  const rid = query.get("$rid") ?? "";
  if (!Number.isInteger(status)) return session.close(`method response with status '${path.slice(0, 60)}'`);
  const { methods } = session.edge.core;
  const bad = badAnswer(packet.payload);
  if (bad) {
    // The caller gets its error now, not at its timeout: an answer the hub cannot pass on is the device's fault.
    methods.refuse(session.key, rid, new HubError(502, "BadDeviceResponse", `The device's answer ${bad}`));
    session.edge.log(`MQTT METHOD ${session.key} rid=${rid} answer refused: ${bad}`);
    return;
  }
  methods.respond(session.key, rid, status, parsePayload(packet.payload));
  session.edge.log(`MQTT METHOD ${session.key} rid=${rid} answered ${status}`);
}

/** Why an answer cannot be passed on (too large, or nested too deep to handle), or undefined when it can. */
function badAnswer(payload: Buffer | string): string | undefined {
  if (Buffer.byteLength(payload) > MAX_METHOD_PAYLOAD_BYTES) {
    return `is larger than ${MAX_METHOD_PAYLOAD_BYTES} bytes`;
  }
  if (nestedDeeperThan(payload.toString())) return `is nested deeper than ${MAX_JSON_DEPTH} levels`;
  return undefined;
}

/** The device answers with JSON; an empty body is null, and anything else is passed on as the text it is. */
function parsePayload(payload: Buffer | string): Json {
  const text = payload.toString();
  if (!text) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}
