/**
 * The `$cbs` node (AMQP claims-based security): a client puts a SAS token for an audience, and the links it opens
 * later under that audience are checked against it. Answers `status-code` 200, or 401 with the reason.
 */
import type { Connection, EventContext, Message } from "rhea";
import { types } from "rhea";
import { HubError } from "../../core/errors";
import { covers } from "../../core/sas";
import { checkToken, scopeOf } from "./auth";
import type { LinkContext, LinkHandler } from "./link-context";

/** Sends a request node's answer on the link the client named in reply_to (or any link reading from `node`). */
export function reply(connection: Connection, request: Message, node: string, answer: Partial<Message>): void {
  const replyTo = request.reply_to;
  const sender =
    connection.find_sender((s: { target?: { address?: string } }) => replyTo && s.target?.address === replyTo) ??
    connection.find_sender((s: { source?: { address?: string } }) => s.source?.address?.endsWith(node));
  if (!sender) return;
  sender.send({ ...answer, correlation_id: request.message_id, to: replyTo } as Message);
}

/**
 * `status-code` as an AMQP int, as the AMQP CBS and management drafts and Azure write it: rhea would send a positive
 * JS number as uint, which uamqp refuses (Azure/azure-uamqp-c src/amqp_management.c reads it with amqpvalue_get_int).
 */
export function statusProperties(status: number, description: string): Record<string, unknown> {
  return { "status-code": types.wrap_int(status), "status-description": description };
}

function tokenText(body: unknown): string {
  if (typeof body === "string") return body;
  if (Buffer.isBuffer(body)) return body.toString("utf8");
  const content = (body as { content?: unknown } | undefined)?.content;
  return Buffer.isBuffer(content) ? content.toString("utf8") : typeof content === "string" ? content : "";
}

function decodeAudience(audience: string): string {
  try {
    return decodeURIComponent(audience);
  } catch {
    return audience;
  }
}

export function cbsNode(context: LinkContext): LinkHandler {
  const { deps, state } = context;
  return {
    onMessage(event: EventContext) {
      const request = event.message!;
      event.delivery?.accept();
      const properties = request.application_properties ?? {};
      const audience = String(properties.name ?? "");
      let status = 200;
      let description = "OK";
      try {
        if (properties.operation !== "put-token") {
          throw new HubError(400, "ArgumentInvalid", `$cbs supports put-token only, not '${properties.operation}'`);
        }
        const grant = checkToken(deps.core, tokenText(request.body));
        // Device and module clients name the audience by their token's `sr`, URL-encoded as in the token
        // (`localhost%2Fdevices%2Fdev1`, azure-iot-device-amqp amqp.js putToken): read it as the path it encodes.
        const wanted = scopeOf(/%2f/i.test(audience) ? decodeAudience(audience) : audience, deps.core.hostName);
        if (!covers(grant.scope, wanted)) {
          throw new HubError(401, "IotHubUnauthorizedAccess", `The token does not cover the audience '${audience}'`);
        }
        state.grants.add({ ...grant, scope: wanted });
        const who = grant.principal.kind === "policy" ? grant.principal.keyName : grant.principal.deviceId;
        deps.log(`AMQP CBS ${state.label} put-token ${who} for '${audience.slice(0, 200)}' 200`);
      } catch (err) {
        status = err instanceof HubError ? err.status : 500;
        description = err instanceof Error ? err.message : String(err);
        deps.log(`AMQP CBS ${state.label} put-token for '${audience.slice(0, 200)}' ${status} (${description})`);
      }
      reply(event.connection, request, "$cbs", { application_properties: statusProperties(status, description) });
    },
  };
}
