/**
 * The links a device or module client opens under `/devices/{id}[/modules/{mid}]/`, by the hub's side of the link
 * and the rest of the address. Each factory is given the identity the connection may act as (auth.ts
 * `requireIdentity`, checked before the factory runs); a link the table does not name gets amqp:not-found.
 */
import type { Receiver, Sender } from "rhea";
import { HubError } from "../../core/errors";
import { DeviceAddress, DeviceIdentity } from "./auth";
import { cloudToDeviceSender } from "./device-cloud-to-device";
import { methodAnswerReceiver, methodCallSender } from "./device-methods";
import { telemetryReceiver } from "./device-telemetry";
import { twinReplySender, twinRequestReceiver } from "./device-twin";
import type { LinkContext, LinkHandler } from "./link-context";

/** The link's identity, already authorized, and its address as the client wrote it (check it again per message). */
export interface DeviceLinkTarget extends DeviceIdentity {
  address: string;
}

export type DeviceLinkFactory = (
  context: LinkContext,
  link: Sender | Receiver,
  target: DeviceLinkTarget,
) => LinkHandler;

/**
 * Keyed by `"{side} {rest}"`: side `receiver` when the device sends on the link (the hub receives), `sender` when the
 * device receives; rest is the address after the identity, lower case (`messages/events`, `twin`, ...).
 */
export const DEVICE_LINKS: Record<string, DeviceLinkFactory> = {
  "receiver messages/events": (context, link, target) => telemetryReceiver(context, link as Receiver, target),
  "sender messages/devicebound": (context, link, target) => {
    if (target.moduleId !== undefined) throw notServed(target.address, "cloud-to-device messages go to devices");
    return cloudToDeviceSender(context, link as Sender, target);
  },
  // A module's input messages (ModuleClient 'inputMessage' opens it): the link attaches, but nothing reaches it,
  // since the hub does not route messages between modules (no IoT Edge runtime, no routes).
  "sender messages/events": (_context, _link, target) => {
    if (target.moduleId === undefined) throw notServed(target.address, "devices send on it, modules receive");
    return {};
  },
  "receiver twin": (context, link, target) => twinRequestReceiver(context, link as Receiver, target),
  "sender twin": (context, link, target) => twinReplySender(context, link as Sender, target),
  "receiver methods/devicebound": (context, link, target) => methodAnswerReceiver(context, link as Receiver, target),
  "sender methods/devicebound": (context, link, target) => methodCallSender(context, link as Sender, target),
};

function notServed(address: string, why: string): HubError {
  return new HubError(404, "NotFound", `The local hub does not serve '${address.slice(0, 200)}' as asked: ${why}`);
}

/** Authorizes a device link and hands it to its factory; throws HubError 401 or 404 (routes.ts refuses the link). */
export function routeDeviceLink(
  context: LinkContext,
  link: Sender | Receiver,
  role: "sender" | "receiver",
  address: string,
  device: DeviceAddress,
): LinkHandler {
  const factory = DEVICE_LINKS[`${role} ${device.rest}`];
  if (!factory) {
    const what = role === "sender" ? "receive from" : "send to";
    throw new HubError(
      404,
      "NotFound",
      `The local hub does not let devices ${what} '${address.slice(0, 200)}' over AMQP`,
    );
  }
  const identity = context.state.grants.requireIdentity(address);
  return factory(context, link, { ...identity, address });
}
