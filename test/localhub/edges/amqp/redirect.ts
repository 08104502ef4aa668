/**
 * The IoT Hub connection string route to telemetry: a receiver attached at `amqps://{host}/messages/events/...` is
 * detached with `amqp:link:redirect`, whose info names the Event Hubs-compatible endpoint (hostname, and an address
 * `amqps://{host}:{port}/{hub}/$management` from which Microsoft's sample reads the entity name).
 */
import type { Sender } from "rhea";
import { conditionOf, refuse } from "./conditions";
import type { LinkContext } from "./link-context";

export function redirectToEventHub(context: LinkContext, link: Sender, address: string): void {
  try {
    context.state.grants.require(address, "ServiceConnect");
  } catch (err) {
    const { condition, description } = conditionOf(err);
    return refuse(context, link, condition, description);
  }
  const { edge } = context;
  const host = context.deps.core.hostName;
  const target = `amqps://${host}:${edge.port}/${edge.entityName}/$management`;
  context.deps.log(`AMQP REDIRECT ${context.state.label} ${address.slice(0, 200)} -> ${target}`);
  link.close({
    condition: "amqp:link:redirect",
    description: `Use the Event Hubs-compatible endpoint ${target}`,
    info: { hostname: edge.endpointHost, "network-host": host, port: edge.port, address: target },
  });
}

/** The Event Hubs-compatible connection string of the hub (for `EVENTHUB_CONNECTION_STRING` in the env file). */
export function eventHubConnectionString(
  endpointHost: string,
  entityName: string,
  policy: { keyName: string; primaryKey: string },
): string {
  return (
    `Endpoint=sb://${endpointHost}/;SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey};` +
    `EntityPath=${entityName}`
  );
}
