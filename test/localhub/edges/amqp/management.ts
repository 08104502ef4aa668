/**
 * The Event Hubs `$management` node: READ of `com.microsoft:eventhub` (name, creation time, partition ids) and of
 * `com.microsoft:partition` (sequence numbers, offset and time of the last event), which EventHubConsumerClient
 * asks before it reads and getEventHubProperties()/getPartitionProperties() return.
 */
import type { EventContext, Message } from "rhea";
import { types } from "rhea";
import { reply, statusProperties } from "./cbs";
import type { LinkContext, LinkHandler } from "./link-context";

function answer(context: LinkContext, request: Message): { status: number; description: string; body?: unknown } {
  const { telemetry } = context.deps.core;
  const properties = request.application_properties ?? {};
  const entity = context.edge.entityName;
  if (properties.operation !== "READ")
    return { status: 400, description: `Unsupported operation ${properties.operation}` };
  if (String(properties.name ?? "").toLowerCase() !== entity.toLowerCase()) {
    return { status: 404, description: `The messaging entity '${properties.name}' could not be found` };
  }
  if (properties.type === "com.microsoft:eventhub") {
    return {
      status: 200,
      description: "OK",
      body: {
        name: entity,
        type: "com.microsoft:eventhub",
        created_at: telemetry.createdAt,
        // int, as Event Hubs writes it (the .NET and Java clients cast it to a signed 32-bit number).
        partition_count: types.wrap_int(telemetry.partitionCount),
        partition_ids: Array.from({ length: telemetry.partitionCount }, (_, id) => String(id)),
      },
    };
  }
  if (properties.type === "com.microsoft:partition") {
    const partitionId = Number(properties.partition);
    const info =
      String(partitionId) === String(properties.partition) ? telemetry.partitionInfo(partitionId) : undefined;
    if (!info) return { status: 404, description: `Partition '${properties.partition}' does not exist` };
    return {
      status: 200,
      description: "OK",
      body: {
        name: entity,
        type: "com.microsoft:partition",
        partition: String(partitionId),
        begin_sequence_number: types.wrap_long(info.beginSequenceNumber),
        last_enqueued_sequence_number: types.wrap_long(info.lastSequenceNumber),
        last_enqueued_offset: String(info.lastOffset),
        last_enqueued_time_utc: new Date(info.lastEnqueuedTimeMs),
        is_partition_empty: info.isEmpty,
      },
    };
  }
  return { status: 400, description: `Unsupported type ${properties.type}` };
}

export function managementNode(context: LinkContext, address: string): LinkHandler {
  context.state.grants.require(address, "ServiceConnect");
  return {
    onMessage(event: EventContext) {
      const request = event.message!;
      event.delivery?.accept();
      const { status, description, body } = answer(context, request);
      context.deps.log(`AMQP MANAGEMENT ${context.state.label} ${request.application_properties?.type} ${status}`);
      reply(event.connection, request, "$management", {
        application_properties: statusProperties(status, description),
        ...(body === undefined ? {} : { body }),
      });
    },
  };
}
