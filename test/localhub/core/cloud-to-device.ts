/**
 * Cloud-to-device messages: a durable queue per device (at most 50, expiry honoured) with the life cycle IoT Hub
 * documents, shared by every transport. It knows nothing of AMQP, MQTT or HTTPS; see settle rules below.
 *
 * - MQTT pushes: pendingFor()/delivering() to send, complete() by the message's key on PUBACK.
 * - HTTPS and AMQP receive: receive() locks the oldest available message for LOCK_TIMEOUT_MS under a fresh lock
 *   token; complete() (Success), reject() (Rejected) or abandon() (back to the queue, delivery count + 1; the abandon
 *   that reaches MAX_DELIVERY_COUNT dead-letters it, DeliveryCountExceeded) settle it by that token. A lock that
 *   expires puts the message back without counting, as on IoT Hub. 'queued' (device id) says a message is available.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { HubError, deviceNotFound } from "./errors";
import type { Store } from "../store/store";
import { checkSendable, fitsPropertyBag } from "./cloud-to-device-size";
import { FeedbackLog } from "./cloud-to-device-feedback";
import {
  DEFAULT_TTL_MS,
  LOCK_TIMEOUT_MS,
  MAX_DELIVERY_COUNT,
  MAX_MESSAGES_PER_DEVICE,
  MAX_TTL_MS,
} from "./cloud-to-device-types";
import type {
  CloudToDeviceInput,
  CloudToDeviceMessage,
  CloudToDeviceRecord,
  DeviceLookup,
  FeedbackRecord,
  FeedbackStatus,
  ReceivedMessage,
  SettledMessage,
} from "./cloud-to-device-types";

export { MAX_MQTT_TOPIC_BYTES, MAX_PROPERTY_BAG_BYTES } from "./cloud-to-device-size";
export * from "./cloud-to-device-types";

/** setTimeout fires at once for a delay longer than this (about 24.8 days): arm the timer no further out. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CloudToDeviceQueue extends EventEmitter {
  private readonly queues = new Map<string, CloudToDeviceMessage[]>();
  private readonly feedback: FeedbackLog;
  private sequence = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store<CloudToDeviceRecord>,
    private readonly devices: DeviceLookup,
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.setMaxListeners(0);
    this.feedback = new FeedbackLog(store, devices, log, now, () => this.emit("feedback"));
    for (const value of store.entries.values()) {
      if (value.kind === "c2d") this.queueOf(value.deviceId).push(value);
      else this.feedback.restore(value);
      this.sequence = Math.max(this.sequence, value.sequence + 1);
    }
    for (const queue of this.queues.values()) queue.sort((a, b) => a.sequence - b.sequence);
    this.feedback.sort();
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
    checkSendable(input);
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
      attempts: 0,
    };
    queue.push(message);
    this.store.put(`c2d:${message.lockToken}`, message);
    await this.store.sync();
    this.schedule();
    this.emit("queued", deviceId);
    return message;
  }

  /** The device's messages still to be completed, oldest first (expired ones are gone), locked ones included. */
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

  /** Whether a receive holds the message now (then no other receiver, MQTT included, gets it). */
  isLocked(message: CloudToDeviceMessage): boolean {
    return message.lock !== undefined && message.lock.untilMs > this.now();
  }

  /**
   * MQTT is about to send the message (by its key): counts the send for the DUP flag. False: do not send it (gone,
   * or locked by a receive). Sends are not deliveries in IoT Hub's count: only abandons are.
   */
  delivering(deviceId: string, key: string): boolean {
    const message = this.find(deviceId, key);
    if (!message || this.isLocked(message)) return false;
    message.attempts = (message.attempts ?? message.deliveryCount) + 1;
    this.store.put(`c2d:${message.lockToken}`, message);
    return true;
  }

  /** How many times the message was sent or received (MQTT sets DUP past the first). */
  attemptsOf(message: CloudToDeviceMessage): number {
    return message.attempts ?? message.deliveryCount;
  }

  /**
   * Locks the device's oldest available message for `lockMs` under a fresh lock token and hands it out (HTTPS GET
   * .../deviceBound, an AMQP transfer); undefined when none is available. The lock is durable when it resolves.
   */
  async receive(deviceId: string, lockMs = LOCK_TIMEOUT_MS): Promise<ReceivedMessage | undefined> {
    const message = this.pendingFor(deviceId).find((m) => !this.isLocked(m));
    if (!message) return undefined;
    const lock = { token: randomUUID(), untilMs: this.now() + lockMs };
    message.lock = lock;
    message.attempts = this.attemptsOf(message) + 1;
    this.store.put(`c2d:${message.lockToken}`, message);
    this.schedule();
    await this.store.sync();
    return { message, lockToken: lock.token, lockedUntilMs: lock.untilMs };
  }

  /**
   * The device took the message: it leaves the queue (feedback Success where asked); resolves once that is durable.
   * `token` is the lock token of a receive whose lock holds, or the message's key (MQTT PUBACK). False: no such
   * message or lock (settled, or the lock expired): IoT Hub's DeviceMessageLockLost (lockLost()).
   */
  async complete(deviceId: string, token: string): Promise<boolean> {
    return this.finish(deviceId, token, "Success");
  }

  /** The device refused the message (AMQP and HTTPS devices can; MQTT devices cannot): dead-lettered, Rejected. */
  async reject(deviceId: string, token: string): Promise<boolean> {
    return this.finish(deviceId, token, "Rejected");
  }

  /**
   * The device gives the message back: unlocked at its place in the queue, delivery count + 1, 'queued' emitted;
   * the abandon that brings the count to MAX_DELIVERY_COUNT dead-letters it (DeliveryCountExceeded). Durable when
   * it resolves. False as for complete().
   */
  async abandon(deviceId: string, token: string): Promise<boolean> {
    const message = this.find(deviceId, token);
    if (!message) return false;
    message.lock = undefined;
    message.deliveryCount++;
    if (message.deliveryCount >= MAX_DELIVERY_COUNT) this.settle(message, "DeliveryCountExceeded");
    else this.store.put(`c2d:${message.lockToken}`, message);
    await this.store.sync();
    if (message.deliveryCount < MAX_DELIVERY_COUNT) this.emit("queued", deviceId);
    return true;
  }

  /**
   * A message the device's transport cannot carry (a journal written before the hub checked): it is dead-lettered
   * (feedback DeliveryCountExceeded) with one log line, so that it cannot block the messages behind it.
   */
  undeliverable(deviceId: string, key: string, why: string): void {
    const message = this.queues.get(deviceId)?.find((m) => m.lockToken === key);
    if (!message) return;
    this.log(`C2D ${deviceId} ${(message.messageId ?? key).slice(0, 64)} dead-lettered: ${why}`);
    this.settle(message, "DeliveryCountExceeded");
  }

  /** The messages in a device's queue that have not expired, sent or not: IoT Hub's cloudToDeviceMessageCount. */
  waitingFor(deviceId: string): number {
    const now = this.now();
    return (this.queues.get(deviceId) ?? []).filter((message) => message.expiryTimeMs > now).length;
  }

  /** Empties a device's queue (the device was deleted). */
  async purge(deviceId: string): Promise<number> {
    const queue = [...(this.queues.get(deviceId) ?? [])];
    for (const message of queue) this.settle(message, "Purged");
    await this.store.sync();
    return queue.length;
  }

  /** The message a settlement names: by a lock token whose lock holds, or by its key. */
  private find(deviceId: string, token: string): CloudToDeviceMessage | undefined {
    const now = this.now();
    return this.queues
      .get(deviceId)
      ?.find((m) => m.lockToken === token || (m.lock?.token === token && m.lock.untilMs > now));
  }

  private async finish(deviceId: string, token: string, status: FeedbackStatus): Promise<boolean> {
    const message = this.find(deviceId, token);
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
    this.feedback.record(message, status, this.sequence++);
  }

  /** Hands out up to `max` feedback records as one batch, to be acknowledged or released by its id. */
  takeFeedback(max = 64): { batchId: string; records: FeedbackRecord[] } | undefined {
    return this.feedback.take(max);
  }

  /** The service accepted the batch: its records are gone for good. */
  acknowledgeFeedback(batchId: string): Promise<void> {
    return this.feedback.acknowledge(batchId);
  }

  /** The batch was not accepted (link closed, released): its records go back to the front. */
  releaseFeedback(batchId: string): void {
    this.feedback.release(batchId);
  }

  get feedbackCount(): number {
    return this.feedback.count;
  }

  /**
   * Removes expired messages (feedback Expired where asked), makes messages whose lock ran out available again
   * ('queued'), and arms a timer for the next of either.
   */
  private expireDue(): void {
    const now = this.now();
    let changed = false;
    for (const [deviceId, queue] of [...this.queues]) {
      for (const message of queue.filter((m) => m.expiryTimeMs <= now)) {
        this.settle(message, "Expired");
        changed = true;
      }
      const unlocked = queue.filter((m) => m.lock && m.lock.untilMs <= now);
      for (const message of unlocked) {
        message.lock = undefined;
        this.store.put(`c2d:${message.lockToken}`, message);
        changed = true;
      }
      if (unlocked.length) setImmediate(() => this.emit("queued", deviceId));
    }
    if (changed) void this.store.sync().catch(() => {});
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    let next = Infinity;
    for (const queue of this.queues.values()) {
      for (const m of queue) next = Math.min(next, m.expiryTimeMs, m.lock?.untilMs ?? Infinity);
    }
    if (!Number.isFinite(next)) return;
    const delay = Math.min(Math.max(0, next - this.now()) + 5, MAX_TIMER_MS);
    this.timer = setTimeout(() => this.expireDue(), delay).unref();
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
    clearTimeout(this.timer);
  }
}
