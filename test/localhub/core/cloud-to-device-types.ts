/**
 * The shapes and the documented numbers of cloud-to-device messaging ("Understand cloud-to-device messaging from an
 * IoT hub"), shared by the queue (cloud-to-device.ts), its feedback log and the edges that deliver and settle.
 */
import { HubError } from "./errors";

export const MAX_MESSAGES_PER_DEVICE = 50;
/** IoT Hub's C2D limits: 64 KB a message, default time to live one hour, at most 48 hours. */
export const MAX_CLOUD_TO_DEVICE_BYTES = 64 * 1024;
export const DEFAULT_TTL_MS = 3600_000;
export const MAX_TTL_MS = 48 * 3600_000;
/** maxDeliveryCount's default: the abandon that brings the count to it dead-letters the message. */
export const MAX_DELIVERY_COUNT = 10;
/** A received (locked) message goes back to the queue after one minute unsettled; IoT Hub's cannot be changed. */
export const LOCK_TIMEOUT_MS = 60_000;
/** Feedback nobody reads is kept up to this many records, then the oldest go (one log line). */
export const MAX_FEEDBACK_RECORDS = 10_000;

/** What a sender gets for a message over MAX_CLOUD_TO_DEVICE_BYTES (the SDK's MessageTooLargeError). */
export const cloudToDeviceTooLarge = (size?: number) =>
  new HubError(
    413,
    "RequestEntityTooLarge",
    `A cloud-to-device message may hold at most ${MAX_CLOUD_TO_DEVICE_BYTES / 1024} KB with its properties` +
      (size === undefined ? "" : `, not ${size} bytes`),
  );

/** A settlement with a lock token that is not (or no longer) the message's lock: 412002 on Azure. */
export const lockLost = (deviceId: string, lockToken: string) =>
  new HubError(
    412,
    "DeviceMessageLockLost",
    `Device ${deviceId} holds no message locked with ${lockToken.slice(0, 64)}: it was settled, or its ` +
      `${LOCK_TIMEOUT_MS / 1000} s lock expired; receive it again`,
  );

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

/** A receive's lock: until `untilMs` only `token` settles the message, and no other receiver gets it. */
export interface MessageLock {
  token: string;
  untilMs: number;
}

/** A queued message as stored (body in base64: the store keeps JSON). */
export interface CloudToDeviceMessage {
  kind: "c2d";
  /** The message's key in its queue and store (MQTT settles by it); not the lock token a receive hands out. */
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
  /** Explicit abandons so far, as IoT Hub counts them (a lock that expires or a lost connection does not count). */
  deliveryCount: number;
  /** Times sent to a device (MQTT's DUP flag); absent in older journals, where deliveryCount counted sends. */
  attempts?: number;
  lock?: MessageLock;
}

/** What receive() hands an edge: the message and the lock token that settles it. */
export interface ReceivedMessage {
  message: CloudToDeviceMessage;
  lockToken: string;
  lockedUntilMs: number;
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

export interface StoredFeedback {
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

export const DESCRIPTIONS: Record<FeedbackStatus, string> = {
  Success: "Success",
  Expired: "Message Expired",
  DeliveryCountExceeded: "Delivery count exceeded",
  Rejected: "Message rejected",
  Purged: "Message purged",
};

export const WANTS_FEEDBACK: Record<Ack, FeedbackStatus[]> = {
  none: [],
  positive: ["Success"],
  negative: ["Expired", "DeliveryCountExceeded", "Rejected", "Purged"],
  full: ["Success", "Expired", "DeliveryCountExceeded", "Rejected", "Purged"],
};
