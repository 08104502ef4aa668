/**
 * Direct methods over AMQP, as azure-iot-device-amqp (amqp_device_method_client.js) uses them: on
 * `/devices/{id}[/modules/{mid}]/methods/devicebound` the hub sends each call (application property
 * `IoThub-methodname`, a UUID correlation id, the payload as JSON) and the device answers on its sending link of the
 * same address (`IoThub-status`, the same correlation id). The core decides when a call goes (core/methods.ts).
 */
import { randomUUID } from "node:crypto";
import type { EventContext, Message, Receiver, Sender } from "rhea";
import { message as amqpMessage, string_to_uuid, uuid_to_string } from "rhea";
import { HubError } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../../core/json-depth";
import { MAX_METHOD_PAYLOAD_BYTES, MAX_PENDING_METHODS, type MethodRequest } from "../../core/methods";
import { identityKey } from "../../core/records";
import type { Json } from "../../core/twin-document";
import { DeviceLinkOutbox } from "./device-link-outbox";
import type { DeviceLinkTarget } from "./device-routes";
import { bodyBytes } from "./devicebound";
import { OVERSIZED } from "./incoming";
import type { LinkContext, LinkHandler } from "./link-context";

const METHOD_NAME = "IoThub-methodname";
const METHOD_STATUS = "IoThub-status";

/** An identity's link that takes calls, and the calls sent on it that wait for an answer (correlation id → rid). */
interface MethodLink {
  outbox: DeviceLinkOutbox;
  awaiting: Map<string, string>;
}

/** Per hub: the link of each identity that takes calls (one connection per identity: the newest link wins). */
const linksOf = new WeakMap<HubCore, Map<string, MethodLink>>();

/** The method links of one hub; the first call makes the core's calls reach them (once per hub). */
function methodLinks(core: HubCore, log: (line: string) => void): Map<string, MethodLink> {
  let table = linksOf.get(core);
  if (!table) {
    const created = new Map<string, MethodLink>();
    core.events.on("method", (request) => {
      const link = created.get(request.key);
      // The identity may be on MQTT instead: its edge sends the call.
      if (link) send(link, request, log);
    });
    linksOf.set(core, (table = created));
  }
  return table;
}

function send(link: MethodLink, request: MethodRequest, log: (line: string) => void): void {
  const correlation = randomUUID();
  // Calls the core gave up on are never answered: forget the oldest rather than keep them all.
  if (link.awaiting.size >= MAX_PENDING_METHODS) link.awaiting.delete(link.awaiting.keys().next().value!);
  link.awaiting.set(correlation, request.rid);
  link.outbox.send({
    correlation_id: string_to_uuid(correlation),
    application_properties: { [METHOD_NAME]: request.methodName },
    body: amqpMessage.data_section(Buffer.from(JSON.stringify(request.payload))) as unknown,
  });
  log(`AMQP METHOD ${request.key} ${request.methodName} rid=${request.rid} sent`);
}

/** The device's receiving link: from its attach on, the identity takes calls. */
export function methodCallSender(context: LinkContext, link: Sender, target: DeviceLinkTarget): LinkHandler {
  const { core } = context.deps;
  const key = identityKey(target.deviceId, target.moduleId);
  const table = methodLinks(core, context.deps.log);
  const mine: MethodLink = { outbox: new DeviceLinkOutbox(context, link, "methods"), awaiting: new Map() };
  table.set(key, mine);
  core.methods.available(key, "amqp");
  context.deps.log(`AMQP METHODS ${key} takes calls`);
  return {
    onSendable: () => mine.outbox.flush(),
    onClose() {
      mine.outbox.close();
      if (table.get(key) !== mine) return;
      table.delete(key);
      core.methods.unavailable(key, "amqp");
      context.deps.log(`AMQP METHODS ${key} takes no calls`);
    },
  };
}

/** rhea gives a UUID as 16 bytes; the SDK sends back the string it was given, which it writes as a UUID again. */
function correlationText(id: unknown): string {
  if (Buffer.isBuffer(id)) return id.length === 16 ? uuid_to_string(id) : id.toString("utf8");
  return typeof id === "string" ? id.toLowerCase() : typeof id === "number" ? String(id) : "";
}

/** Why an answer cannot be passed on (too large, or nested too deep), or undefined when it can; as over MQTT. */
function badAnswer(answer: Message): string | undefined {
  const body = answer.application_properties?.[OVERSIZED] ? undefined : bodyBytes(answer.body);
  if (!body || body.length > MAX_METHOD_PAYLOAD_BYTES) return `is larger than ${MAX_METHOD_PAYLOAD_BYTES} bytes`;
  if (nestedDeeperThan(body.toString("utf8"))) return `is nested deeper than ${MAX_JSON_DEPTH} levels`;
  if (!Number.isInteger(Number(answer.application_properties?.[METHOD_STATUS]))) return "has no integer IoThub-status";
  return undefined;
}

/** The device answers with JSON; an empty body is null, and anything else is passed on as the text it is. */
function payloadOf(text: string): Json {
  if (!text) return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

/** The device's sending link: its answers, matched to the calls by correlation id. */
export function methodAnswerReceiver(context: LinkContext, link: Receiver, target: DeviceLinkTarget): LinkHandler {
  const { deps, state } = context;
  const key = identityKey(target.deviceId, target.moduleId);
  return {
    onMessage(event: EventContext) {
      const answer = event.message!;
      const delivery = event.delivery!;
      const { methods } = deps.core;
      const awaiting = linksOf.get(deps.core)?.get(key)?.awaiting;
      const correlation = correlationText(answer.correlation_id);
      const rid = awaiting?.get(correlation);
      awaiting?.delete(correlation);
      try {
        state.grants.requireIdentity(target.address);
      } catch (err) {
        delivery.reject({ condition: "amqp:unauthorized-access", description: (err as Error).message });
        return;
      }
      if (!delivery.remote_settled) delivery.accept();
      if (rid === undefined) return deps.log(`AMQP METHOD ${key} answer to an unknown call ignored`);
      const bad = badAnswer(answer);
      if (bad) {
        // The caller gets its error now, not at its timeout: an answer the hub cannot pass on is the device's fault.
        methods.refuse(key, rid, new HubError(502, "BadDeviceResponse", `The device's answer ${bad}`));
        return deps.log(`AMQP METHOD ${key} rid=${rid} answer refused: ${bad}`);
      }
      const status = Number(answer.application_properties![METHOD_STATUS]);
      methods.respond(key, rid, status, payloadOf(bodyBytes(answer.body).toString("utf8")));
      deps.log(`AMQP METHOD ${key} rid=${rid} answered ${status}`);
    },
  };
}
