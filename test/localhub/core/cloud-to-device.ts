/**
 * Cloud-to-device messages: a durable queue per device (at most 50, expiry honoured, redelivered until completed)
 * and the feedback records the service reads back. It knows nothing of AMQP or MQTT: the AMQP edge enqueues and
 * hands out feedback, the MQTT edge delivers with pendingFor()/complete() and listens for 'queued'.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { HubError, badRequest, deviceNotFound } from "./errors";
import type { Store } from "../store/store";
import {
  MAX_PROPERTY_BAG_BYTES,
  fitsPropertyBag,
  isDate,
  messageBytes,
  propertyBagBytes,
} from "./cloud-to-device-size";

export { MAX_MQTT_TOPIC_BYTES, MAX_PROPERTY_BAG_BYTES } from "./cloud-to-device-size";

export const MAX_MESSAGES_PER_DEVICE = 50;
/** IoT Hub's C2D limits: 64 KB a message, default time to live one hour, at most 48 hours, 10 deliveries. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const DEFAULT_TTL_MS = 3600_000;
export const MAX_TTL_MS = 48 * 3600_000;
export const MAX_DELIVERY_COUNT = 10;
/** Feedback nobody reads is kept up to this many records, then the oldest go (one log line). */
export const MAX_FEEDBACK_RECORDS = 10_000;
/** setTimeout fires at once for a delay longer than this (about 24.8 days): arm the expiry timer no further out. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export type Ack = "none" | "positive" | "negative" | "full";

export interface CloudToDeviceInput {
  body: Buffer;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  ack?: string;
  expiryTimeMs?: number;
  properties?: Record<string, string>;
}

/** A queued message as stored (body in base64: the store keeps JSON). */
export interface CloudToDeviceMessage {
  kind: "c2d";
  lockToken: string;
  deviceId: string;
  sequence: number;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  ack: Ack;
  properties: Record<string, string>;
  body: string;
  enqueuedTimeMs: number;
  expiryTimeMs: number;
  deliveryCount: number;
}

export type FeedbackStatus = "Success" | "Expired" | "DeliveryCountExceeded" | "Rejected" | "Purged";

/** One record of a feedback batch, with the field names IoT Hub sends. */
export interface FeedbackRecord {
  originalMessageId: string;
  enqueuedTimeUtc: string;
  statusCode: FeedbackStatus;
  description: string;
  deviceId: string;
  deviceGenerationId: string;
}

interface StoredFeedback {
  kind: "feedback";
  sequence: number;
  record: FeedbackRecord;
}

/** What 'settled' carries: a message left its queue with this outcome. */
export interface SettledMessage {
  deviceId: string;
  messageId?: string;
  status: FeedbackStatus;
}

export type CloudToDeviceRecord = CloudToDeviceMessage | StoredFeedback;

/** What the queue needs to know of the identities (core/identities.ts). */
export interface DeviceLookup {
  find(deviceId: string): { generationId: string } | undefined;
}

const DESCRIPTIONS: Record<FeedbackStatus, string> = {
  Success: "Success",
  Expired: "Message Expired",
  DeliveryCountExceeded: "Delivery count exceeded",
  Rejected: "Message rejected",
  Purged: "Message purged",
};
const WANTS_FEEDBACK: Record<Ack, FeedbackStatus[]> = {
  none: [],
  positive: ["Success"],
  negative: ["Expired", "DeliveryCountExceeded", "Rejected", "Purged"],
  full: ["Success", "Expired", "DeliveryCountExceeded", "Rejected", "Purged"],
};

export class CloudToDeviceQueue extends EventEmitter {
  private readonly queues = new Map<string, CloudToDeviceMessage[]>();
  private readonly feedback: StoredFeedback[] = [];
  /** Feedback handed out and not yet accepted, by batch id. */
  private readonly inFlight = new Map<string, StoredFeedback[]>();
  private sequence = 0;
  private expiryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store<CloudToDeviceRecord>,
    private readonly devices: DeviceLookup,
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.setMaxListeners(0);
    for (const value of store.entries.values()) {
      if (value.kind === "c2d") this.queueOf(value.deviceId).push(value);
      else this.feedback.push(value);
      this.sequence = Math.max(this.sequence, value.sequence + 1);
    }
    for (const queue of this.queues.values()) queue.sort((a, b) => a.sequence - b.sequence);
    this.feedback.sort((a, b) => a.sequence - b.sequence);
    this.dropUndeliverable();
    this.expireDue();
  }

  private queueOf(deviceId: string): CloudToDeviceMessage[] {
    let queue = this.queues.get(deviceId);
    if (!queue) this.queues.set(deviceId, (queue = []));
    return queue;
  }

  /** Queues a message for a device; resolves once it is durable, then emits 'queued' with the device id. */
  async enqueue(deviceId: string, input: CloudToDeviceInput): Promise<CloudToDeviceMessage> {
    if (!this.devices.find(deviceId)) throw deviceNotFound(deviceId);
    const size = messageBytes(input);
    if (size > MAX_MESSAGE_BYTES) {
      throw new HubError(
        413,
        "RequestEntityTooLarge",
        `A cloud-to-device message may hold at most 64 KB with its properties, not ${size} bytes`,
      );
    }
    const bag = propertyBagBytes(input);
    if (bag > MAX_PROPERTY_BAG_BYTES) {
      throw new HubError(
        413,
        "RequestEntityTooLarge",
        `The message's properties take ${bag} bytes URL-encoded; a device receives at most ${MAX_PROPERTY_BAG_BYTES}`,
      );
    }
    if (input.expiryTimeMs !== undefined && !isDate(input.expiryTimeMs)) {
      throw badRequest("The message's absolute expiry time is not a date");
    }
    const queue = this.queueOf(deviceId);
    if (queue.length >= MAX_MESSAGES_PER_DEVICE) {
      throw new HubError(
        403,
        "DeviceMaximumQueueDepthExceeded",
        `Device ${deviceId} already has ${MAX_MESSAGES_PER_DEVICE} cloud-to-device messages queued`,
      );
    }
    const now = this.now();
    const ack = (["none", "positive", "negative", "full"] as const).find((a) => a === input.ack) ?? "none";
    const message: CloudToDeviceMessage = {
      kind: "c2d",
      lockToken: randomUUID(),
      deviceId,
      sequence: this.sequence++,
      messageId: input.messageId,
      correlationId: input.correlationId,
      userId: input.userId,
      contentType: input.contentType,
      contentEncoding: input.contentEncoding,
      ack,
      properties: input.properties ?? {},
      body: input.body.toString("base64"),
      enqueuedTimeMs: now,
      expiryTimeMs: Math.min(input.expiryTimeMs ?? now + DEFAULT_TTL_MS, now + MAX_TTL_MS),
      deliveryCount: 0,
    };
    queue.push(message);
    this.store.put(`c2d:${message.lockToken}`, message);
    await this.store.sync();
    this.scheduleExpiry();
    this.emit("queued", deviceId);
    return message;
  }

  /** The device's messages still to be completed, oldest first (expired ones are gone). */
  pendingFor(deviceId: string): readonly CloudToDeviceMessage[] {
    this.expireDue();
    return this.queues.get(deviceId) ?? [];
  }

  /** The oldest message after `afterLockToken` (or the oldest of all), for an edge that delivers one at a time. */
  nextFor(deviceId: string, afterLockToken?: string): CloudToDeviceMessage | undefined {
    const pending = this.pendingFor(deviceId);
    const at = afterLockToken ? pending.findIndex((m) => m.lockToken === afterLockToken) : -1;
    return pending[at + 1];
  }

  /**
   * Counts a delivery attempt; past MAX_DELIVERY_COUNT the message is dead-lettered (feedback
   * DeliveryCountExceeded) and false is returned: do not send it.
   */
  delivering(deviceId: string, lockToken: string): boolean {
    const message = this.queues.get(deviceId)?.find((m) => m.lockToken === lockToken);
    if (!message) return false;
    if (message.deliveryCount >= MAX_DELIVERY_COUNT) {
      this.settle(message, "DeliveryCountExceeded");
      return false;
    }
    message.deliveryCount++;
    this.store.put(`c2d:${message.lockToken}`, message);
    return true;
  }

  /**
   * A message the device's transport cannot carry (a journal written before the hub checked): it is dead-lettered
   * (feedback DeliveryCountExceeded) with one log line, so that it cannot block the messages behind it.
   */
  undeliverable(deviceId: string, lockToken: string, why: string): void {
    const message = this.queues.get(deviceId)?.find((m) => m.lockToken === lockToken);
    if (!message) return;
    this.log(`C2D ${deviceId} ${(message.messageId ?? lockToken).slice(0, 64)} dead-lettered: ${why}`);
    this.settle(message, "DeliveryCountExceeded");
  }

  /** The device took the message (MQTT PUBACK): it leaves the queue; resolves once that is durable. */
  async complete(deviceId: string, lockToken: string): Promise<boolean> {
    return this.finish(deviceId, lockToken, "Success");
  }

  /** The device refused the message (AMQP and HTTPS devices can; MQTT devices cannot). */
  async reject(deviceId: string, lockToken: string): Promise<boolean> {
    return this.finish(deviceId, lockToken, "Rejected");
  }

  /** Empties a device's queue (the device was deleted). */
  async purge(deviceId: string): Promise<number> {
    const queue = [...(this.queues.get(deviceId) ?? [])];
    for (const message of queue) this.settle(message, "Purged");
    await this.store.sync();
    return queue.length;
  }

  private async finish(deviceId: string, lockToken: string, status: FeedbackStatus): Promise<boolean> {
    const message = this.queues.get(deviceId)?.find((m) => m.lockToken === lockToken);
    if (!message) return false;
    this.settle(message, status);
    await this.store.sync();
    return true;
  }

  /** Takes a message out of its queue and records the feedback its ack asks for. */
  private settle(message: CloudToDeviceMessage, status: FeedbackStatus): void {
    const queue = this.queues.get(message.deviceId) ?? [];
    queue.splice(queue.indexOf(message), 1);
    if (!queue.length) this.queues.delete(message.deviceId);
    this.store.put(`c2d:${message.lockToken}`, null);
    // Each message's outcome once durable, for watchers that are not the service's feedback reader (the portal).
    const outcome: SettledMessage = { deviceId: message.deviceId, messageId: message.messageId, status };
    void this.store.sync().then(() => this.emit("settled", outcome));
    if (!WANTS_FEEDBACK[message.ack].includes(status)) return;
    const stored: StoredFeedback = {
      kind: "feedback",
      sequence: this.sequence++,
      record: {
        originalMessageId: message.messageId ?? "",
        enqueuedTimeUtc: new Date(this.now()).toISOString(),
        statusCode: status,
        description: DESCRIPTIONS[status],
        deviceId: message.deviceId,
        deviceGenerationId: this.devices.find(message.deviceId)?.generationId ?? "",
      },
    };
    this.feedback.push(stored);
    this.store.put(`feedback:${stored.sequence}`, stored);
    while (this.feedback.length > MAX_FEEDBACK_RECORDS) {
      const dropped = this.feedback.shift()!;
      this.store.put(`feedback:${dropped.sequence}`, null);
      this.log(`C2D FEEDBACK dropped the oldest record: more than ${MAX_FEEDBACK_RECORDS} unread`);
    }
    void this.store.sync().then(() => this.emit("feedback"));
  }

  /** Hands out up to `max` feedback records as one batch, to be acknowledged or released by its id. */
  takeFeedback(max = 64): { batchId: string; records: FeedbackRecord[] } | undefined {
    if (!this.feedback.length) return undefined;
    const taken = this.feedback.splice(0, max);
    const batchId = randomUUID();
    this.inFlight.set(batchId, taken);
    return { batchId, records: taken.map((f) => f.record) };
  }

  /** The service accepted the batch: its records are gone for good. */
  async acknowledgeFeedback(batchId: string): Promise<void> {
    for (const stored of this.inFlight.get(batchId) ?? []) this.store.put(`feedback:${stored.sequence}`, null);
    this.inFlight.delete(batchId);
    await this.store.sync();
  }

  /** The batch was not accepted (link closed, released): its records go back to the front. */
  releaseFeedback(batchId: string): void {
    const batch = this.inFlight.get(batchId);
    if (!batch) return;
    this.inFlight.delete(batchId);
    this.feedback.unshift(...batch);
    this.emit("feedback");
  }

  get feedbackCount(): number {
    return this.feedback.length;
  }

  /** Removes expired messages (feedback Expired where asked), and arms a timer for the next expiry. */
  private expireDue(): void {
    const now = this.now();
    let expired = false;
    for (const queue of [...this.queues.values()]) {
      for (const message of queue.filter((m) => m.expiryTimeMs <= now)) {
        this.settle(message, "Expired");
        expired = true;
      }
    }
    if (expired) void this.store.sync();
    this.scheduleExpiry();
  }

  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer);
    let next = Infinity;
    for (const queue of this.queues.values()) for (const m of queue) next = Math.min(next, m.expiryTimeMs);
    if (!Number.isFinite(next)) return;
    const delay = Math.min(Math.max(0, next - this.now()) + 5, MAX_TIMER_MS);
    this.expiryTimer = setTimeout(() => this.expireDue(), delay).unref();
  }

  /** Messages of an older journal that no device could receive, or whose expiry is not a time, go at start. */
  private dropUndeliverable(): void {
    for (const queue of [...this.queues.values()]) {
      for (const message of [...queue]) {
        const why = !Number.isFinite(message.expiryTimeMs)
          ? "its expiry time is not a date"
          : !fitsPropertyBag(message)
            ? "its properties do not fit an MQTT topic"
            : undefined;
        if (why) this.undeliverable(message.deviceId, message.lockToken, why);
      }
    }
  }

  close(): void {
    clearTimeout(this.expiryTimer);
  }
}
