/**
 * Telemetry for the portal: one device's recent device-to-cloud messages, newest first, and each new one once it is
 * durable. It reads through the core's telemetry interface (partition readers from a position, 'appended').
 */
import type { LoggedEvent, Telemetry } from "../../core/telemetry";

/** Messages a device's history shows. */
export const TELEMETRY_HISTORY = 50;
/** How far back a history looks (over all partitions), so a busy log cannot make one request slow. */
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
export function recentTelemetry(telemetry: Telemetry, deviceId: string): TelemetryView[] {
  const found: LoggedEvent[] = [];
  const perPartition = Math.ceil(MAX_SCANNED_EVENTS / telemetry.partitionCount);
  for (let id = 0; id < telemetry.partitionCount; id++) {
    const info = telemetry.partitionInfo(id)!;
    const start = Math.max(info.beginSequenceNumber, info.lastSequenceNumber + 1 - perPartition);
    const reader = telemetry.reader(id, { from: "sequenceNumber", value: start, inclusive: true });
    for (let event = reader.read(); event; event = reader.read()) if (isFromDevice(event, deviceId)) found.push(event);
  }
  found.sort((a, b) => b.enqueuedTimeMs - a.enqueuedTimeMs || b.sequenceNumber - a.sequenceNumber);
  return found.slice(0, TELEMETRY_HISTORY).map(telemetryView);
}

/** Calls `onEvent` for each event that becomes durable from now on, until the returned function is called. */
export function followTelemetry(telemetry: Telemetry, onEvent: (event: LoggedEvent) => void): () => void {
  const readers = Array.from({ length: telemetry.partitionCount }, (_, id) => telemetry.reader(id, { from: "latest" }));
  return telemetry.onAppended((id) => {
    const reader = readers[id];
    for (let event = reader?.read(); event; event = reader.read()) onEvent(event);
  });
}

export function isFromDevice(event: LoggedEvent, deviceId: string): boolean {
  return deviceOf(event) === deviceId;
}
