/**
 * CONNECT: the client id names the identity, the username names the hub, and either the password is a SAS token that
 * grants DeviceConnect for exactly that identity, or there is no password and the TLS client certificate is the
 * identity's (X.509). Clean session false resumes the identity's stored subscriptions.
 */
import type { IConnectPacket } from "mqtt-packet";
import { unauthorized } from "../../core/errors";
import { identityKey } from "../../core/records";
import { authenticate, authorize } from "../../core/sas";
import { checkX509 } from "../../core/x509";
import { deliverCloudToDevice } from "./cloud-to-device";
import type { Session } from "./session";
import { METHODS_FILTER } from "./methods";
import { ownTopicRoot } from "./topics";
import { msSince } from "../timing";
import { isProvisioningConnect, onProvisioningConnect } from "../dps/mqtt";

// CONNACK return codes of MQTT 3.1.1.
const UNACCEPTABLE_PROTOCOL = 1;
const IDENTIFIER_REJECTED = 2;
/** What IoT Hub answers a device it cannot take now (throttled, unavailable); the SDKs retry it. */
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function refuse(session: Session, returnCode: number, why: string, started: bigint): void {
  session.send({ cmd: "connack", returnCode, sessionPresent: false });
  const ms = msSince(started);
  const who = session.deviceId ? identityKey(session.deviceId, session.moduleId) : "?";
  session.edge.log(`MQTT CONNECT ${who} ${returnCode} refused (${why}) ${ms.toFixed(1)}ms`);
  session.close(why);
}

export function onConnect(session: Session, packet: IConnectPacket): void {
  const started = process.hrtime.bigint();
  const { core } = session.edge;
  if (session.connected) return session.close("second CONNECT");
  if (packet.protocolVersion !== 4)
    return refuse(session, UNACCEPTABLE_PROTOCOL, "only MQTT 3.1.1 is supported", started);
  // The Device Provisioning Service shares the port: its username names a registration, not this hub.
  if (isProvisioningConnect(packet)) return onProvisioningConnect(session, packet);
  const parts = (packet.clientId ?? "").split("/");
  if (!parts[0] || parts.length > 2 || (parts.length === 2 && !parts[1])) {
    return refuse(session, IDENTIFIER_REJECTED, "client id must be '<device>' or '<device>/<module>'", started);
  }
  const [deviceId, moduleId] = parts;
  session.deviceId = deviceId;
  session.moduleId = moduleId;
  const prefix = `${core.hostName}/${packet.clientId}/`;
  if (!(packet.username ?? "").toLowerCase().startsWith(prefix.toLowerCase())) {
    return refuse(session, BAD_USERNAME_OR_PASSWORD, `username must start with '${prefix}'`, started);
  }
  try {
    const password = packet.password?.toString("utf8");
    if (password) {
      const principal = authenticate(core, password);
      authorize(principal, ["DeviceConnect"], ownTopicRoot(deviceId, moduleId));
      // An identity's token connects that identity only: not its modules, not its device.
      if (principal.kind === "identity" && (principal.deviceId !== deviceId || principal.moduleId !== moduleId)) {
        throw unauthorized(`the token is not valid for ${identityKey(deviceId, moduleId)}`);
      }
    } else {
      checkX509(core.identities.find(deviceId, moduleId), session.peerCertificate(), deviceId);
      session.authType = "x509";
    }
    if (!core.identities.find(deviceId, moduleId)) throw unauthorized("no such device or module");
    if (core.identities.find(deviceId)?.status === "disabled") throw unauthorized("device is disabled");
  } catch (err) {
    return refuse(session, NOT_AUTHORIZED, err instanceof Error ? err.message : String(err), started);
  }

  const refusedFor = session.edge.faults.refusingFor(identityKey(deviceId, moduleId));
  if (refusedFor > 0) {
    return refuse(session, SERVER_UNAVAILABLE, `fault: reconnects refused, ${refusedFor.toFixed(1)} s left`, started);
  }

  session.key = identityKey(deviceId, moduleId);
  session.connected = true;
  // Clean session false (what the Azure SDKs send) resumes the identity's earlier subscriptions: the SDK does not
  // subscribe again after a reconnect, it expects the hub to remember.
  session.cleanSession = packet.clean === true;
  const saved = packet.clean ? undefined : core.sessions.subscriptions(session.key);
  if (packet.clean) core.sessions.endAll(session.key, false);
  for (const topic of saved ?? []) session.subscriptions.add(topic);
  session.startKeepalive(packet.keepalive ?? 0);
  session.edge.claim(session.key, session);
  core.identities.setConnected(deviceId, moduleId, true);
  session.send({ cmd: "connack", returnCode: 0, sessionPresent: saved !== undefined });
  deliverCloudToDevice(session, session.edge.core.cloudToDevice);
  const ms = msSince(started);
  session.edge.log(`MQTT CONNECT ${session.key} 0 accepted over ${session.transport} ${ms.toFixed(1)}ms`);
  // A resumed session may have subscribed to methods before: calls waiting for this identity can go now.
  if (session.subscriptions.has(METHODS_FILTER)) core.methods.available(session.key);
}
