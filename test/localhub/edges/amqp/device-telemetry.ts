/**
 * `/devices/{id}[/modules/{mid}]/messages/events`: a device's or module's telemetry over AMQP, into the same event log
 * as MQTT telemetry (core/telemetry.ts), accepted only once durable; a message over 256 KB is rejected with
 * amqp:link:message-size-exceeded, which the device SDK turns into MessageTooLargeError.
 */
import type { EventContext, Message, Receiver } from "rhea";
import { MAX_TELEMETRY_BYTES, TelemetryTooLargeError } from "../../core/telemetry";
import { identityKey } from "../../core/records";
import { conditionOf } from "./conditions";
import type { DeviceLinkTarget } from "./device-routes";
import { bodyBytes, idText } from "./devicebound";
import { OVERSIZED } from "./incoming";
import type { LinkContext, LinkHandler } from "./link-context";

/** AMQP message properties and the MQTT property bag keys core/telemetry.ts reads them from. */
const SYSTEM_PROPERTIES: [string, string][] = [
  ["message_id", "$.mid"],
  ["correlation_id", "$.cid"],
  ["user_id", "$.uid"],
  ["content_type", "$.ct"],
  ["content_encoding", "$.ce"],
];

/** The message's properties as the URL-encoded bag the core takes (MQTT's topic form); values become strings. */
export function propertyBagOf(message: Message): string {
  const pairs: string[] = [];
  for (const [field, key] of SYSTEM_PROPERTIES) {
    const value = idText((message as unknown as Record<string, unknown>)[field]);
    if (value !== undefined && value !== "") pairs.push(`${key}=${encodeURIComponent(String(value))}`);
  }
  for (const [key, value] of Object.entries(message.application_properties ?? {})) {
    if (value === undefined || value === null || key.startsWith("$.")) continue;
    const text =
      value instanceof Date ? value.toISOString() : typeof value === "object" ? JSON.stringify(value) : String(value);
    pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(text)}`);
  }
  return pairs.join("&");
}

export function telemetryReceiver(context: LinkContext, link: Receiver, target: DeviceLinkTarget): LinkHandler {
  const { deps, state } = context;
  const key = identityKey(target.deviceId, target.moduleId);
  return {
    onMessage(event: EventContext) {
      const delivery = event.delivery!;
      const message = event.message!;
      (async () => {
        if (message.application_properties?.[OVERSIZED]) throw new TelemetryTooLargeError("oversized");
        // A token may have expired since the link opened: checked at every message, as IoT Hub does.
        const identity = state.grants.requireIdentity(target.address);
        const body = bodyBytes(message.body);
        const propertyBag = propertyBagOf(message);
        const logged = await deps.core.telemetry.receive({
          ...identity,
          authType: state.grants.authTypeOf(identity),
          body,
          propertyBag,
        });
        if (!delivery.remote_settled) delivery.accept();
        deps.log(
          `AMQP TELEMETRY ${key} ${body.length} bytes -> partition ${logged.partition} #${logged.sequenceNumber}`,
        );
      })().catch((err: unknown) => {
        const error =
          err instanceof TelemetryTooLargeError
            ? {
                condition: "amqp:link:message-size-exceeded",
                description: `A device-to-cloud message may hold at most ${MAX_TELEMETRY_BYTES / 1024} KB with its properties`,
              }
            : conditionOf(err);
        if (!delivery.remote_settled) delivery.reject(error);
        deps.log(`AMQP TELEMETRY ${key} refused: ${error.description}`);
      });
    },
  };
}
