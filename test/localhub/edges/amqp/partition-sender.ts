/**
 * `{hub}/ConsumerGroups/{group}/Partitions/{n}`: streams one partition of the event log to an Event Hubs consumer,
 * from the position its selector filter names (offset, sequence number or enqueued time), then live, as credit
 * allows. Consumer groups need no state on the hub: readers keep their own checkpoints.
 */
import type { Sender } from "rhea";
import { message as amqpMessage, types } from "rhea";
import { HubError } from "../../core/errors";
import type { LoggedEvent, Partition } from "../../store/event-log";
import { refuse } from "./conditions";
import { encodeEvent } from "./encode-event";
import type { LinkContext, LinkHandler } from "./server";

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

/** Where a reader starts: the first sequence number its filter lets through. */
export function startOf(partition: Partition, selector: string | undefined): number {
  if (!selector) return partition.info().beginSequenceNumber;
  const match = /^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'?([^']*)'?\s*$/i.exec(
    selector,
  );
  if (!match) throw new HubError(400, "ArgumentInvalid", `Unsupported selector filter: ${selector.slice(0, 200)}`);
  const [, field, operator, text] = match;
  const inclusive = operator === ">=";
  if (field.toLowerCase() === "offset" && text === "@latest") return partition.endSequence;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new HubError(400, "ArgumentInvalid", `Not a number in the filter: ${text}`);
  const pick = { offset: "offset", "sequence-number": "sequenceNumber", "enqueued-time": "time" } as const;
  const key = pick[field.toLowerCase() as keyof typeof pick];
  return partition.firstAfter((entry) => (inclusive ? entry[key] >= value : entry[key] > value));
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
function withRuntimeInfo(event: LoggedEvent, partition: Partition): Buffer {
  const info = partition.info();
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
  const partition = deps.events.partitions[partitionId];
  if (!partition || !Number.isInteger(partitionId)) {
    throw new HubError(
      404,
      "NotFound",
      `Partition ${partitionId} does not exist (the hub has ${deps.events.partitions.length})`,
    );
  }
  let next = startOf(partition, selectorOf(link));
  const capabilities = [
    (link as unknown as { remote: { attach?: { desired_capabilities?: unknown } } }).remote.attach
      ?.desired_capabilities ?? [],
  ]
    .flat()
    .map(String);
  const runtimeInfo = capabilities.includes(RUNTIME_METRIC);
  deps.log(`AMQP EVENTS ${state.label} reads ${address} from sequence number ${next}`);

  let refused = false;
  const pump = () => {
    if (refused || !authorized()) return;
    state.batchWrites();
    while (link.sendable() && next < partition.endSequence && !state.congested()) {
      const event = partition.event(next);
      if (!event) {
        // Retention removed it while the reader was behind: continue at the oldest event still kept.
        next = Math.max(next + 1, partition.info().beginSequenceNumber);
        continue;
      }
      // Format 0: the bytes are an encoded message already.
      link.send(runtimeInfo ? withRuntimeInfo(event, partition) : toAmqp(event), undefined, 0);
      next++;
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
  const onAppended = (id: number) => id === partitionId && pump();
  deps.events.on("appended", onAppended);
  setImmediate(pump);
  return {
    onSendable: pump,
    onClose: () => void deps.events.off("appended", onAppended),
  };
}
