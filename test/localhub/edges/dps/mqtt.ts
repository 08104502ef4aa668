/**
 * Device registration over MQTT (and MQTT over WebSockets) on the hub's own ports, as azure-iot-provisioning-device-mqtt
 * speaks it: CONNECT with username `{idScope}/registrations/{registrationId}/api-version=...` and client id the
 * registration id; SUBSCRIBE `$dps/registrations/res/#`; PUBLISH `$dps/registrations/PUT/iotdps-register/?$rid=` and
 * `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=&operationId=`; answers on
 * `$dps/registrations/res/{status}/?$rid=[&retry-after=]`. connect.ts hands such a CONNECT here.
 */
import type { IConnectPacket, Packet } from "mqtt-packet";
import { parseBoundedJson } from "../../core/json-depth";
import type { DeviceCredentials } from "../../core/provisioning/attestation";
import { DpsError, asDpsError, dpsBadRequest } from "../../core/provisioning/dps-errors";
import type { Session } from "../mqtt/session";
import { splitTopic } from "../mqtt/topics";
import { msSince } from "../timing";
import { peerCertificateOf } from "./peer-certificate";
import { DEVICE_API_VERSIONS } from "./rest-routes";

const USERNAME = /^([^/]+)\/registrations\/([^/]+)\/api-version=([^&]+)(?:&.*)?$/;
const RESPONSES = "$dps/registrations/res/#";
const NOT_AUTHORIZED = 5;
const BAD_USERNAME_OR_PASSWORD = 4;

/** True for a CONNECT meant for the provisioning service (its username names a registration, not a hub). */
export function isProvisioningConnect(packet: IConnectPacket): boolean {
  return USERNAME.test(packet.username ?? "");
}

export function onProvisioningConnect(session: Session, packet: IConnectPacket): void {
  const started = process.hrtime.bigint();
  const [, idScope, registrationId, apiVersion] = USERNAME.exec(packet.username ?? "")!;
  const dps = session.edge.core.provisioning;
  const refuse = (code: number, why: string) => {
    session.send({ cmd: "connack", returnCode: code, sessionPresent: false });
    session.edge.log(`MQTT DPS CONNECT ${registrationId} ${code} refused (${why}) ${msSince(started).toFixed(1)}ms`);
    session.close(why);
  };
  if (!DEVICE_API_VERSIONS.has(decodeURIComponent(apiVersion))) {
    return refuse(BAD_USERNAME_OR_PASSWORD, `api-version ${apiVersion} is not one the provisioning service supports`);
  }
  if (packet.clientId !== registrationId)
    return refuse(BAD_USERNAME_OR_PASSWORD, "client id must be the registration id");
  const password = packet.password?.toString("utf8");
  const credentials: DeviceCredentials = password
    ? { sasToken: password }
    : { certificate: peerCertificateOf(session.tlsConnection) };
  try {
    dps.checkDevice(idScope, registrationId, credentials);
  } catch (err) {
    const error = asDpsError(err);
    if (!error) throw err;
    return refuse(NOT_AUTHORIZED, error.message);
  }
  session.key = `$dps/${idScope}/registrations/${registrationId}`;
  session.connected = true;
  session.cleanSession = true;
  session.startKeepalive(packet.keepalive ?? 0);
  session.packetHandler = (s, p) => onProvisioningPacket(s, p, { idScope, registrationId, credentials });
  session.send({ cmd: "connack", returnCode: 0, sessionPresent: false });
  session.edge.log(
    `MQTT DPS CONNECT ${registrationId} 0 accepted over ${session.transport} ${msSince(started).toFixed(1)}ms`,
  );
}

interface Registration {
  idScope: string;
  registrationId: string;
  credentials: DeviceCredentials;
}

async function onProvisioningPacket(session: Session, packet: Packet, registration: Registration): Promise<void> {
  if (packet.cmd === "subscribe") {
    const granted = packet.subscriptions.map(({ topic, qos }) => {
      if (topic !== RESPONSES) return 128;
      session.subscriptions.add(topic);
      return Math.min(qos, 1);
    });
    return session.send({ cmd: "suback", messageId: packet.messageId, granted });
  }
  if (packet.cmd === "unsubscribe") {
    for (const topic of packet.unsubscriptions) session.subscriptions.delete(topic);
    return session.send({ cmd: "unsuback", messageId: packet.messageId, granted: [] });
  }
  if (packet.cmd !== "publish") return session.close(`unsupported packet ${packet.cmd}`);
  if (packet.qos === 2) return session.close("QoS 2 is not supported");
  const { path, query } = splitTopic(packet.topic);
  if (
    path !== "$dps/registrations/PUT/iotdps-register" &&
    path !== "$dps/registrations/GET/iotdps-get-operationstatus"
  ) {
    return session.close(`publish to a topic it does not own: ${packet.topic.slice(0, 200)}`);
  }
  const started = process.hrtime.bigint();
  const rid = query.get("$rid") ?? "";
  const dps = session.edge.core.provisioning;
  const { idScope, registrationId, credentials } = registration;
  let topic: string;
  let body: string;
  try {
    if (path === "$dps/registrations/PUT/iotdps-register") {
      const request = parseBoundedJson(packet.payload.toString() || "{}", "the registration request");
      const operation = await dps.register(idScope, registrationId, request, credentials);
      topic = `$dps/registrations/res/202/?$rid=${rid}&retry-after=${dps.retryAfterSeconds}`;
      body = JSON.stringify(operation);
    } else {
      const operationId = query.get("operationId");
      if (!operationId) throw dpsBadRequest("operationId is missing from the topic");
      const operation = await dps.operation(idScope, registrationId, operationId, credentials);
      topic = `$dps/registrations/res/200/?$rid=${rid}`;
      body = JSON.stringify(operation);
    }
  } catch (err) {
    const error = asDpsError(err) ?? new DpsError(500, 500000, "The local provisioning service failed");
    if (!asDpsError(err))
      session.edge.log(`internal error on MQTT DPS ${path}: ${(err as Error)?.message ?? String(err)}`);
    topic = `$dps/registrations/res/${error.status}/?$rid=${rid}`;
    body = error.toBody(rid);
  }
  if (packet.qos === 1) session.send({ cmd: "puback", messageId: packet.messageId });
  session.deliver(topic, body);
  session.edge.log(
    `MQTT DPS PUBLISH ${registrationId} ${path} ${topic.split("/")[3]} ${msSince(started).toFixed(1)}ms`,
  );
}
