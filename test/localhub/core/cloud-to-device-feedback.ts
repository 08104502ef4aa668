/**
 * The feedback records the service reads back from `/messages/serviceBound/feedback`: kept durably until a batch
 * is accepted, at most MAX_FEEDBACK_RECORDS unread. The queue (cloud-to-device.ts) adds a record as a message settles.
 */
import { randomUUID } from "node:crypto";
import type { Store } from "../store/store";
import { DESCRIPTIONS, MAX_FEEDBACK_RECORDS, WANTS_FEEDBACK } from "./cloud-to-device-types";
import type {
  CloudToDeviceMessage,
  CloudToDeviceRecord,
  DeviceLookup,
  FeedbackRecord,
  FeedbackStatus,
  StoredFeedback,
} from "./cloud-to-device-types";

export class FeedbackLog {
  private readonly records: StoredFeedback[] = [];
  /** Feedback handed out and not yet accepted, by batch id. */
  private readonly inFlight = new Map<string, StoredFeedback[]>();

  constructor(
    private readonly store: Store<CloudToDeviceRecord>,
    private readonly devices: DeviceLookup,
    private readonly log: (line: string) => void,
    private readonly now: () => number,
    /** Told once a new record is durable, and when a released batch is back. */
    private readonly onAvailable: () => void,
  ) {}

  /** A record read from the store at start (call sort() once they are all in). */
  restore(stored: StoredFeedback): void {
    this.records.push(stored);
  }

  sort(): void {
    this.records.sort((a, b) => a.sequence - b.sequence);
  }

  /** Records the outcome of a message if its ack asks for it; durable with the store's next sync. */
  record(message: CloudToDeviceMessage, status: FeedbackStatus, sequence: number): void {
    if (!WANTS_FEEDBACK[message.ack].includes(status)) return;
    const stored: StoredFeedback = {
      kind: "feedback",
      sequence,
      record: {
        originalMessageId: message.messageId ?? "",
        enqueuedTimeUtc: new Date(this.now()).toISOString(),
        statusCode: status,
        description: DESCRIPTIONS[status],
        deviceId: message.deviceId,
        deviceGenerationId: this.devices.find(message.deviceId)?.generationId ?? "",
      },
    };
    this.records.push(stored);
    this.store.put(`feedback:${stored.sequence}`, stored);
    while (this.records.length > MAX_FEEDBACK_RECORDS) {
      const dropped = this.records.shift()!;
      this.store.put(`feedback:${dropped.sequence}`, null);
      this.log(`C2D FEEDBACK dropped the oldest record: more than ${MAX_FEEDBACK_RECORDS} unread`);
    }
    void this.store.sync().then(() => this.onAvailable());
  }

  /** Hands out up to `max` feedback records as one batch, to be acknowledged or released by its id. */
  take(max = 64): { batchId: string; records: FeedbackRecord[] } | undefined {
    if (!this.records.length) return undefined;
    const taken = this.records.splice(0, max);
    const batchId = randomUUID();
    this.inFlight.set(batchId, taken);
    return { batchId, records: taken.map((f) => f.record) };
  }

  /** The service accepted the batch: its records are gone for good. */
  async acknowledge(batchId: string): Promise<void> {
    for (const stored of this.inFlight.get(batchId) ?? []) this.store.put(`feedback:${stored.sequence}`, null);
    this.inFlight.delete(batchId);
    await this.store.sync();
  }

  /** The batch was not accepted (link closed, released): its records go back to the front. */
  release(batchId: string): void {
    const batch = this.inFlight.get(batchId);
    if (!batch) return;
    this.inFlight.delete(batchId);
    this.records.unshift(...batch);
    this.onAvailable();
  }

  get count(): number {
    return this.records.length;
  }
}
