/**
 * Twins over AMQP, as azure-iot-device-amqp (amqp_twin_client.js) and the C SDK (iothubtransport_amqp_twin_messenger.c)
 * use them: on `/devices/{id}[/modules/{mid}]/twin` the device sends requests (message annotation `operation` GET;
 * PATCH with `resource` `/properties/reported`; PUT or DELETE with `/notifications/twin/properties/desired`), each
 * with a correlation id, and receives on its link of the same `com.microsoft:channel-correlation-id` the answers
 * (annotations `status`, an int, and `version`, a long) and, once subscribed, the desired patches the core made durable.
 */
import type { EventContext, Message, Receiver, Sender } from "rhea";
import { message as amqpMessage, types } from "rhea";
import { HubError, badRequest } from "../../core/errors";
import type { DesiredChange } from "../../core/events";
import type { HubCore } from "../../core/hub-core";
import { parseBoundedJson } from "../../core/json-depth";
import { identityKey } from "../../core/records";
import { DeviceLinkOutbox } from "./device-link-outbox";
import type { DeviceLinkTarget } from "./device-routes";
import { bodyBytes } from "./devicebound";
import { MAX_TWIN_REQUESTS_IN_FLIGHT } from "./limits";
import { OVERSIZED } from "./incoming";
import type { ConnectionState, LinkContext, LinkHandler } from "./link-context";

const CHANNEL = "com.microsoft:channel-correlation-id";
const REPORTED = "/properties/reported";
const DESIRED_NOTIFICATIONS = "/notifications/twin/properties/desired";

/** The device's receiving end of one twin channel: where its answers and, once it subscribed, desired patches go. */
interface TwinReplies {
  key: string;
  outbox: DeviceLinkOutbox;
}

/** The reply links of each connection, by channel id (a request is answered on the link of its channel). */
const repliesOf = new WeakMap<ConnectionState, Map<string, TwinReplies>>();
/** The reply links subscribed to desired patches, per hub and identity. */
const subscribersOf = new WeakMap<HubCore, Map<string, Set<TwinReplies>>>();

function channelOf(link: Sender | Receiver): string {
  const channel = (link.properties as Record<string, unknown> | undefined)?.[CHANNEL];
  return typeof channel === "string" ? channel : "";
}

/** A data section holding `text` (rhea types it as any). */
const dataSection = (text: string): unknown => amqpMessage.data_section(Buffer.from(text)) as unknown;

/** The subscribers of one hub; the first call makes the hub's desired changes reach them (once per hub). */
function subscribers(core: HubCore): Map<string, Set<TwinReplies>> {
  let table = subscribersOf.get(core);
  if (!table) {
    const created = new Map<string, Set<TwinReplies>>();
    core.events.on("desired", (change) => {
      for (const replies of created.get(identityKey(change.deviceId, change.moduleId)) ?? [])
        pushDesired(replies, change);
    });
    subscribersOf.set(core, (table = created));
  }
  return table;
}

function subscribe(core: HubCore, replies: TwinReplies, on: boolean): void {
  const table = subscribers(core);
  const set = table.get(replies.key) ?? new Set<TwinReplies>();
  if (on) table.set(replies.key, set.add(replies));
  else if (set.delete(replies) && !set.size) table.delete(replies.key);
}

/** As MQTT's `$iothub/twin/PATCH/properties/desired/?$version=n`: the patch with its `$version`. */
function pushDesired(replies: TwinReplies, change: DesiredChange): void {
  replies.outbox.send({
    message_annotations: { version: types.wrap_long(change.version) },
    body: dataSection(JSON.stringify({ ...change.patch, $version: change.version })),
  });
}

/** The device's receiving link of a twin channel (the hub sends on it). */
export function twinReplySender(context: LinkContext, link: Sender, target: DeviceLinkTarget): LinkHandler {
  const replies: TwinReplies = {
    key: identityKey(target.deviceId, target.moduleId),
    outbox: new DeviceLinkOutbox(context, link, "twin"),
  };
  const channel = channelOf(link);
  let table = repliesOf.get(context.state);
  if (!table) repliesOf.set(context.state, (table = new Map<string, TwinReplies>()));
  table.set(channel, replies);
  return {
    onSendable: () => replies.outbox.flush(),
    onClose() {
      replies.outbox.close();
      subscribe(context.deps.core, replies, false);
      if (table.get(channel) === replies) table.delete(channel);
    },
  };
}

/** A correlation id goes back as it came: a string, or a UUID (rhea gives 16 bytes and would write other bytes as one). */
function sameCorrelation(id: unknown): unknown {
  return Buffer.isBuffer(id) && id.length !== 16 ? types.wrap_binary(id) : id;
}

interface Answer {
  status: number;
  version?: number;
  body?: string;
}

/** The device's sending link of a twin channel: its requests, each answered on the channel's reply link. */
export function twinRequestReceiver(context: LinkContext, link: Receiver, target: DeviceLinkTarget): LinkHandler {
  const { deps, state } = context;
  const key = identityKey(target.deviceId, target.moduleId);
  const channel = channelOf(link);
  let inFlight = 0;

  const answer = (request: Message, started: bigint, operation: string, result: Answer) => {
    const replies = repliesOf.get(state)?.get(channel);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    deps.log(`AMQP TWIN ${key} ${operation} ${result.status} ${ms.toFixed(1)}ms`);
    if (!replies)
      return deps.log(`AMQP TWIN ${key}: no reply link on channel '${channel.slice(0, 80)}', answer dropped`);
    const annotations: Record<string, unknown> = { status: types.wrap_int(result.status) };
    if (result.version !== undefined) annotations.version = types.wrap_long(result.version);
    replies.outbox.send({
      correlation_id: sameCorrelation(request.correlation_id),
      message_annotations: annotations,
      ...(result.body === undefined ? {} : { body: dataSection(result.body) }),
    } as Message);
  };

  const serve = async (request: Message, operation: string): Promise<Answer> => {
    if (request.application_properties?.[OVERSIZED]) throw badRequest("the twin request is larger than 1 MB");
    // A token may have expired since the link opened: checked at every request, as for telemetry.
    const identity = state.grants.requireIdentity(target.address);
    const { twins } = deps.core;
    const resource = String(request.message_annotations?.resource ?? "");
    if (operation === "GET") {
      return { status: 200, body: JSON.stringify(await twins.deviceTwin(identity.deviceId, identity.moduleId)) };
    }
    if (operation === "PATCH" && resource === REPORTED) {
      const patch = parseBoundedJson(bodyBytes(request.body).toString("utf8"), "the reported properties patch");
      const version = await twins.patchReported(identity.deviceId, identity.moduleId, patch);
      return { status: 204, version };
    }
    if ((operation === "PUT" || operation === "DELETE") && resource === DESIRED_NOTIFICATIONS) {
      const replies = repliesOf.get(state)?.get(channel);
      if (replies) subscribe(deps.core, replies, operation === "PUT");
      return { status: 200 };
    }
    throw badRequest(`twin operation '${operation.slice(0, 20)}' on '${resource.slice(0, 100)}' is not supported`);
  };

  return {
    onMessage(event: EventContext) {
      const request = event.message!;
      const delivery = event.delivery!;
      const started = process.hrtime.bigint();
      const operation = String(request.message_annotations?.operation ?? "");
      if (!delivery.remote_settled) delivery.accept();
      if (inFlight >= MAX_TWIN_REQUESTS_IN_FLIGHT) {
        const error = new HubError(
          429,
          "ThrottlingException",
          `More than ${MAX_TWIN_REQUESTS_IN_FLIGHT} twin requests at once`,
        );
        return answer(request, started, operation, { status: 429, body: error.toMqttBody() });
      }
      inFlight += 1;
      void serve(request, operation)
        .catch((err: unknown): Answer => {
          const error = err instanceof HubError ? err : new HubError(500, "ServerError", "the local hub failed");
          return { status: error.status, body: error.toMqttBody() };
        })
        .then((result) => answer(request, started, operation, result))
        .finally(() => (inFlight -= 1));
    },
  };
}
