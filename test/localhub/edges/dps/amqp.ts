/**
 * Device registration over AMQP (and AMQP over WebSockets) on the hub's own ports, as
 * azure-iot-provisioning-device-amqp speaks it: SASL PLAIN as `{idScope}/registrations/{registrationId}` with the SAS
 * token as password, a receiver and a sender link on that same address, requests with `iotdps-operation-type`
 * (`iotdps-register`, `iotdps-get-operationstatus` with `iotdps-operation-id`) and `correlation_id`, answers on the
 * receiver link with the same correlation id, the operation JSON as a data section and `retry-after`. A request
 * that fails is rejected with the AMQP condition the SDK turns into its error. The AMQP edge's sasl.ts and routes.ts
 * hand such connections and links here. An X.509 device logs in without SASL and presents its TLS client certificate.
 */
import type { Connection, EventContext, Receiver, Sender } from "rhea";
import { message as amqpMessage } from "rhea";
import { parseBoundedJson } from "../../core/json-depth";
import type { HubCore } from "../../core/hub-core";
import type { DeviceCredentials } from "../../core/provisioning/attestation";
import { DpsError, asDpsError, dpsBadRequest } from "../../core/provisioning/dps-errors";
import type { Operation } from "../../core/provisioning/registrations";
import type { LinkContext, LinkHandler } from "../amqp/link-context";
import { msSince } from "../timing";

const REGISTRATION = /^([^/@]+)\/registrations\/([^/]+)$/;

/** What SASL PLAIN established for a provisioning connection. */
export interface ProvisioningLogin {
  idScope: string;
  registrationId: string;
  sasToken: string;
}

/** True for a SASL PLAIN user that names a registration rather than a hub policy. */
export const isProvisioningUser = (username: string): boolean => REGISTRATION.test(username);

/** Checks a provisioning SASL PLAIN login; undefined (SASL outcome "auth") when no enrollment matches. */
export function provisioningLogin(core: HubCore, username: string, password: string): ProvisioningLogin | undefined {
  const [, idScope, registrationId] = REGISTRATION.exec(username)!;
  try {
    core.provisioning.checkDevice(idScope, registrationId, { sasToken: password });
    return { idScope, registrationId, sasToken: password };
  } catch (err) {
    if (!asDpsError(err)) throw err;
    return undefined;
  }
}

/** The login sasl.ts kept on the connection's SASL mechanism, if it was a provisioning one. */
function loginOf(connection: Connection): ProvisioningLogin | undefined {
  const layer = (
    connection as unknown as { sasl_transport?: { selected?: { mechanism?: { provisioning?: ProvisioningLogin } } } }
  ).sasl_transport;
  return layer?.selected?.mechanism?.provisioning;
}

/** The registration an address names (`{idScope}/registrations/{id}`, scheme and host dropped), if any. */
export function registrationOf(address: string): { idScope: string; registrationId: string } | undefined {
  const path = address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").replace(/^\/+|\/+$/g, "");
  const match = REGISTRATION.exec(path);
  return match ? { idScope: match[1], registrationId: match[2] } : undefined;
}

/** Serves one of a registering device's two links; refuses it unless the connection logged in as that device. */
export function provisioningLink(
  context: LinkContext,
  link: Sender | Receiver,
  role: "sender" | "receiver",
  address: string,
): LinkHandler | undefined {
  const { idScope, registrationId } = registrationOf(address)!;
  const login = loginOf(link.connection);
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  let credentials: DeviceCredentials;
  if (login && same(login.idScope, idScope) && same(login.registrationId, registrationId)) {
    credentials = { sasToken: login.sasToken };
  } else {
    // No SASL login as this device: an X.509 device presents its certificate in TLS instead.
    const peer = login ? undefined : context.state.grants.peerCertificate();
    credentials = { certificate: peer && { ...peer, chain: peer.chain ?? [] } };
    try {
      context.deps.core.provisioning.checkDevice(idScope, registrationId, credentials);
    } catch (err) {
      const error = asDpsError(err);
      if (!error) throw err;
      // Refusing the link alone leaves the SDK waiting: it attaches both links before it looks at either's errors.
      context.state.close("amqp:unauthorized-access", error.message);
      return undefined;
    }
  }
  if (role === "sender") {
    link.set_source({ address });
    return {};
  }
  link.set_target({ address });
  return { onMessage: (event) => void answer(context, event, address, { idScope, registrationId, credentials }) };
}

async function answer(
  context: LinkContext,
  event: EventContext,
  address: string,
  registration: { idScope: string; registrationId: string; credentials: DeviceCredentials },
): Promise<void> {
  const started = process.hrtime.bigint();
  const request = event.message!;
  const properties: Record<string, unknown> = request.application_properties ?? {};
  const given = properties["iotdps-operation-type"];
  const operationType = typeof given === "string" ? given : "";
  const dps = context.deps.core.provisioning;
  const { idScope, registrationId, credentials } = registration;
  let outcome = "accepted";
  try {
    let operation: Operation;
    if (operationType === "iotdps-register") {
      const body = parseBoundedJson(bodyText(request.body) || "{}", "the registration request");
      operation = await dps.register(idScope, registrationId, body, credentials);
    } else if (operationType === "iotdps-get-operationstatus") {
      const operationId = properties["iotdps-operation-id"];
      if (typeof operationId !== "string") throw dpsBadRequest("iotdps-operation-id is missing");
      operation = await dps.operation(idScope, registrationId, operationId, credentials);
    } else {
      throw dpsBadRequest(`iotdps-operation-type '${operationType.slice(0, 100)}' is not supported`);
    }
    const sender = event.connection.find_sender((s: Sender) => s.source?.address === address);
    event.delivery?.accept();
    sender?.send({
      correlation_id: request.correlation_id as unknown as string,
      application_properties: {
        "iotdps-operation-type": operationType,
        "iotdps-status": operation.status,
        ...(operation.status === "assigning" ? { "retry-after": String(dps.retryAfterSeconds) } : {}),
      },
      body: amqpMessage.data_section(Buffer.from(JSON.stringify(operation))) as unknown,
    });
  } catch (err) {
    const error = asDpsError(err) ?? new DpsError(500, 500000, "The local provisioning service failed");
    if (!asDpsError(err)) context.deps.log(`internal error on AMQP DPS: ${(err as Error)?.message ?? String(err)}`);
    outcome = `rejected ${error.status}`;
    event.delivery?.reject({ condition: conditionOf(error.status), description: error.message });
  }
  context.deps.log(`AMQP DPS ${registrationId} ${operationType} ${outcome} ${msSince(started).toFixed(1)}ms`);
}

function bodyText(body: unknown): string {
  const section = body as { content?: unknown } | undefined;
  if (Buffer.isBuffer(section?.content)) return section.content.toString("utf8");
  if (Buffer.isBuffer(body)) return body.toString("utf8");
  return typeof body === "string" ? body : "";
}

/** The AMQP condition azure-iot-amqp-base's translateError turns into the error class of the same status. */
function conditionOf(status: number): string {
  if (status === 401) return "amqp:unauthorized-access";
  if (status === 404) return "amqp:not-found";
  if (status === 400) return "com.microsoft:argument-error";
  if (status === 412) return "com.microsoft:precondition-failed";
  if (status === 403) return "com.microsoft:quota-exceeded";
  return "amqp:internal-error";
}
