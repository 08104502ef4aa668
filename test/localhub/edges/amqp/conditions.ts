/**
 * AMQP errors as IoT Hub sends them: the condition for each hub error (the service SDK maps conditions back to its
 * error classes), and refusing a link with one.
 */
import type { Receiver, Sender } from "rhea";
import { HubError } from "../../core/errors";
import type { LinkContext } from "./link-context";

/** Detaches a link with an AMQP error; the client's attach call fails with it. */
export function refuse(context: LinkContext, link: Sender | Receiver, condition: string, description: string): void {
  context.deps.log(`AMQP refused link ${link.name} of ${context.state.label}: ${description}`);
  link.close({ condition, description });
}

/** AMQP condition for a hub error, as the service SDK translates them back. */
export function conditionOf(err: unknown): { condition: string; description: string } {
  if (!(err instanceof HubError)) return { condition: "amqp:internal-error", description: "the local hub failed" };
  const condition =
    err.status === 401
      ? "amqp:unauthorized-access"
      : err.status === 404
        ? "amqp:not-found"
        : err.status === 413
          ? "amqp:link:message-size-exceeded"
          : err.code === "DeviceMaximumQueueDepthExceeded"
            ? "amqp:resource-limit-exceeded"
            : err.status === 400
              ? "com.microsoft:argument-error"
              : "amqp:internal-error";
  return { condition, description: err.message };
}
