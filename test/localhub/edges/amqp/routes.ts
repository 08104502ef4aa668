/**
 * Which file serves an AMQP link, by its address and direction, as IoT Hub lays them out: `$cbs`, `$management`,
 * `/messages/devicebound`, `/messages/serviceBound/feedback`, the Event Hubs partitions, the redirect, and device
 * links under `/devices/{id}[/modules/{mid}]/` (device-routes.ts).
 * Anything else is refused with amqp:not-found, so that a client learns at attach time, not by a silent hang.
 */
import type { Receiver, Sender } from "rhea";
import { addressPath, deviceAddress } from "./auth";
import { conditionOf, refuse } from "./conditions";
import { cbsNode } from "./cbs";
import { deviceboundReceiver } from "./devicebound";
import { routeDeviceLink } from "./device-routes";
import { feedbackSender } from "./feedback";
import { managementNode } from "./management";
import { partitionSender } from "./partition-sender";
import { redirectToEventHub } from "./redirect";
import type { LinkContext, LinkHandler } from "./link-context";
import { provisioningLink, registrationOf } from "../dps/amqp";

/** Echoes the client's terminus, as a server that accepts the link does. */
function echo(link: Sender | Receiver): void {
  if (link.source?.address !== undefined) link.set_source({ address: link.source.address });
  if (link.target?.address !== undefined) link.set_target({ address: link.target.address });
}

export function routeLink(
  context: LinkContext,
  link: Sender | Receiver,
  role: "sender" | "receiver",
): LinkHandler | undefined {
  const address = (role === "sender" ? link.source?.address : link.target?.address) ?? "";
  const path = addressPath(address);
  const entity = context.edge.entityName.toLowerCase();
  // The Device Provisioning Service shares the port: its links are named after a registration.
  if (registrationOf(address)) return provisioningLink(context, link, role, address);
  try {
    const device = deviceAddress(address);
    if (device) {
      const handler = routeDeviceLink(context, link, role, address, device);
      return (echo(link), handler);
    }
    if (role === "sender") {
      // The client receives: replies of a request node, feedback, events, or the redirect.
      if (path === "$cbs" || path === "$management" || path === `${entity}/$management`) return (echo(link), {});
      if (path === "messages/servicebound/feedback") return (echo(link), feedbackSender(context, link as Sender));
      const partition = new RegExp(`^${escape(entity)}/consumergroups/([^/]+)/partitions/([^/]+)$`).exec(path);
      if (partition) return (echo(link), partitionSender(context, link as Sender, address, Number(partition[2])));
      if (path === "messages/events" || path.startsWith("messages/events/")) {
        return (redirectToEventHub(context, link as Sender, address), undefined);
      }
    } else {
      // The client sends: requests to a node, or cloud-to-device messages.
      if (path === "$cbs") return (echo(link), cbsNode(context));
      if (path === "$management" || path === `${entity}/$management`)
        return (echo(link), managementNode(context, `${context.edge.entityName}/$management`));
      if (path === "messages/devicebound") return (echo(link), deviceboundReceiver(context));
    }
  } catch (err) {
    const { condition, description } = conditionOf(err);
    refuse(context, link, condition, description);
    return undefined;
  }
  refuse(context, link, "amqp:not-found", `The local hub does not serve '${address.slice(0, 200)}' over AMQP`);
  return undefined;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
