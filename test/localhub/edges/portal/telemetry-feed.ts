/**
 * Telemetry for the portal: one device's recent device-to-cloud messages, newest first, and each new one as the
 * event log makes it durable. It reads through the log's own interface (partitions, sequence numbers, 'appended').
 */
import type { EventLog, LoggedEvent } from "../../store/event-log";
import { partitionOf } from "../../store/event-log";

/** Messages a device's history shows. */
export const TELEMETRY_HISTORY = 50;
/** How far back a history looks in the device's partition, so a busy log cannot make one request slow. */
export const MAX_SCANNED_EVENTS = 5000;
/** Bytes of a body the portal shows; the rest is cut (the message itself is untouched). */
export const MAX_BODY_PREVIEW_BYTES = 4096;

export interface TelemetryView {
  deviceId: string;
  moduleId: string | null;
  partition: number;
  sequenceNumber: number;
  enqueuedTime: string;
  properties: Record<string, unknown>;
  systemProperties: Record<string, unknown>;
  body: string;
  bodyEncoding: "utf8" | "base64";
  truncated: boolean;
}

export function telemetryView(event: LoggedEvent): TelemetryView {
  const preview = event.body.subarray(0, MAX_BODY_PREVIEW_BYTES);
  const text = preview.toString("utf8");
  const isText = !text.includes("\uFFFD");
  const annotations = event.annotations as Record<string, unknown>;
  return {
    deviceId: typeof deviceOf(event) === "string" ? (deviceOf(event) as string) : "",
    moduleId:
      typeof annotations["iothub-connection-module-id"] === "string"
        ? annotations["iothub-connection-module-id"]
        : null,
    partition: event.partition,
    sequenceNumber: event.sequenceNumber,
    enqueuedTime: new Date(event.enqueuedTimeMs).toISOString(),
    properties: { ...event.properties },
    systemProperties: { ...event.messageProperties, ...annotations },
    body: isText ? text : preview.toString("base64"),
    bodyEncoding: isText ? "utf8" : "base64",
    truncated: event.body.length > preview.length,
  };
}

const deviceOf = (event: LoggedEvent) => (event.annotations as Record<string, unknown>)["iothub-connection-device-id"];

/** The device's latest messages, newest first. */
export function recentTelemetry(log: EventLog, deviceId: string): TelemetryView[] {
  const partition = log.partitions[partitionOf(deviceId, log.partitions.length)];
  const begin = partition.info().beginSequenceNumber;
  const found: TelemetryView[] = [];
  const stop = Math.max(begin, partition.endSequence - MAX_SCANNED_EVENTS);
  for (let seq = partition.endSequence - 1; seq >= stop && found.length < TELEMETRY_HISTORY; seq--) {
    const event = partition.event(seq);
    if (event && deviceOf(event) === deviceId) found.push(telemetryView(event));
  }
  return found;
}

/** Calls `onEvent` for each event that becomes durable from now on, until the returned function is called. */
export function followTelemetry(log: EventLog, onEvent: (event: LoggedEvent) => void): () => void {
  const cursors = log.partitions.map((p) => p.endSequence);
  const onAppended = (id: number) => {
    const partition = log.partitions[id];
    while (cursors[id] < partition.endSequence) {
      const event = partition.event(cursors[id]++);
      if (event) onEvent(event);
    }
  };
  log.on("appended", onAppended);
  return () => log.off("appended", onAppended);
}

export function isFromDevice(event: LoggedEvent, deviceId: string): boolean {
  return deviceOf(event) === deviceId;
}
