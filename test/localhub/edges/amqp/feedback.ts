/**
 * `/messages/serviceBound/feedback`: batches of delivery outcomes for messages sent with `ack`, read by the service
 * SDK's getFeedbackReceiver(). A batch leaves the hub only when the reader accepts (completes) it; a released batch,
 * or one in flight when the link goes, is given out again.
 */
import { randomUUID } from "node:crypto";
import type { Delivery, EventContext, Sender } from "rhea";
import { message as amqpMessage } from "rhea";
import type { LinkContext, LinkHandler } from "./link-context";

export const FEEDBACK_CONTENT_TYPE = "application/vnd.microsoft.iothub.feedback.json";

export function feedbackSender(context: LinkContext, link: Sender): LinkHandler {
  const { deps, state } = context;
  state.grants.require("/messages/serviceBound/feedback", "ServiceConnect");
  const queue = deps.core.cloudToDevice;
  const inFlight = new Map<Delivery, string>();

  const pump = () => {
    while (link.sendable() && !state.congested()) {
      const batch = queue.takeFeedback();
      if (!batch) return;
      const delivery = link.send({
        message_id: randomUUID(),
        content_type: FEEDBACK_CONTENT_TYPE,
        content_encoding: "utf-8",
        user_id: Buffer.from(deps.core.hostName) as never,
        to: "/messages/serviceBound/feedback",
        body: amqpMessage.data_section(Buffer.from(JSON.stringify(batch.records))) as unknown,
      });
      inFlight.set(delivery, batch.batchId);
      deps.log(`AMQP FEEDBACK ${state.label} ${batch.records.length} records`);
    }
  };
  queue.on("feedback", pump);
  setImmediate(pump);

  return {
    onSendable: pump,
    onOutcome(event: EventContext, outcome) {
      const batchId = event.delivery && inFlight.get(event.delivery);
      if (!batchId) return;
      inFlight.delete(event.delivery!);
      // A rejected batch is one the reader cannot use: like the real hub, do not offer it again.
      if (outcome === "accepted" || outcome === "rejected") void queue.acknowledgeFeedback(batchId);
      else queue.releaseFeedback(batchId);
    },
    onClose() {
      queue.off("feedback", pump);
      for (const batchId of inFlight.values()) queue.releaseFeedback(batchId);
      inFlight.clear();
    },
  };
}
