/**
 * `{hub}/ConsumerGroups/{group}/Partitions/{n}`: streams one partition of the core's telemetry to an Event Hubs
 * consumer, from the position its selector filter names (offset, sequence number or enqueued time), then live, as
 * credit allows. Consumer groups need no state on the hub: readers keep their own checkpoints.
 */
import type { Sender } from "rhea";
import { message as amqpMessage, types } from "rhea";
import { HubError } from "../../core/errors";
import type { EventPosition, LoggedEvent, PartitionInfo } from "../../core/telemetry";
import { refuse } from "./conditions";
import { encodeEvent } from "./encode-event";
import type { LinkContext, LinkHandler } from "./link-context";

const SELECTOR = "apache.org:selector-filter:string";
const RUNTIME_METRIC = "com.microsoft:enable-receiver-runtime-metric-name";

/** The selector text of the link's source filter (rhea may hand it over described or plain). */
function selectorOf(link: Sender): string | undefined {
  const filter = (link.source as { filter?: Record<string, unknown> } | undefined)?.filter;
  const value = filter?.[SELECTOR];
  if (typeof value === "string") return value;
  const inner = (value as { value?: unknown } | undefined)?.value;
  return typeof inner === "string" ? inner : undefined;
}

const FIELDS = { offset: "offset", "sequence-number": "sequenceNumber", "enqueued-time": "enqueuedTime" } as const;

/** Where a reader starts, from its selector filter: `amqp.annotation.x-opt-offset > '12'` and the like. */
export function positionOf(selector: string | undefined): EventPosition {
  if (!selector) return { from: "earliest" };
  const match = /^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'?([^']*)'?\s*$/i.exec(
    selector,
  );
  if (!match) throw new HubError(400, "ArgumentInvalid", `Unsupported selector filter: ${selector.slice(0, 200)}`);
  const [, field, operator, text] = match;
  const from = FIELDS[field.toLowerCase() as keyof typeof FIELDS];
  if (from === "offset" && text === "@latest") return { from: "latest" };
  const value = Number(text);
  if (!Number.isFinite(value)) throw new HubError(400, "ArgumentInvalid", `Not a number in the filter: ${text}`);
  return { from, value, inclusive: operator === ">=" };
}

/** Encoded once per event and shared by every reader of it (consumer groups, several readers of a partition). */
const encoded = new WeakMap<LoggedEvent, Buffer>();

/** The event as Event Hubs delivers it: body, properties, the hub's annotations and the x-opt-* positions. */
function toAmqp(event: LoggedEvent): Buffer {
  let bytes = encoded.get(event);
  if (!bytes) encoded.set(event, (bytes = encodeEvent(event)));
  return bytes;
}

/** Runtime information a reader asked for (last enqueued event), as delivery annotations: encoded per delivery. */
function withRuntimeInfo(event: LoggedEvent, info: PartitionInfo): Buffer {
  const message = amqpMessage.decode(toAmqp(event)) as unknown as Record<string, unknown>;
  message.delivery_annotations = {
    last_enqueued_sequence_number: types.wrap_long(info.lastSequenceNumber),
    last_enqueued_offset: String(info.lastOffset),
    last_enqueued_time_utc: new Date(info.lastEnqueuedTimeMs),
    runtime_info_retrieval_time_utc: new Date(),
  };
  return amqpMessage.encode(message);
}

export function partitionSender(context: LinkContext, link: Sender, address: string, partitionId: number): LinkHandler {
  const { deps, state } = context;
  state.grants.require(address, "ServiceConnect");
  const { telemetry } = deps.core;
  const reader = telemetry.reader(partitionId, positionOf(selectorOf(link)));
  const capabilities = [
    (link as unknown as { remote: { attach?: { desired_capabilities?: unknown } } }).remote.attach
      ?.desired_capabilities ?? [],
  ]
    .flat()
    .map(String);
  const runtimeInfo = capabilities.includes(RUNTIME_METRIC);
  deps.log(`AMQP EVENTS ${state.label} reads ${address} from sequence number ${reader.position}`);

  let refused = false;
  const pump = () => {
    if (refused || !authorized()) return;
    state.batchWrites();
    while (link.sendable() && reader.hasNext && !state.congested()) {
      const event = reader.read();
      if (!event) return;
      // Format 0: the bytes are an encoded message already.
      link.send(
        runtimeInfo ? withRuntimeInfo(event, telemetry.partitionInfo(partitionId)!) : toAmqp(event),
        undefined,
        0,
      );
    }
  };
  /** A token that expired while the link was open ends the link, as on the real hub (clients renew in time). */
  const authorized = () => {
    try {
      state.grants.require(address, "ServiceConnect");
      return true;
    } catch (err) {
      refused = true;
      refuse(context, link, "amqp:unauthorized-access", (err as Error).message);
      return false;
    }
  };
  const unsubscribe = telemetry.onAppended((id) => id === partitionId && pump());
  setImmediate(pump);
  return { onSendable: pump, onClose: unsubscribe };
}
