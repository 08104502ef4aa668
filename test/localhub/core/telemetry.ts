/**
 * The core's telemetry: device-to-cloud messages into the Event Hubs-compatible log, stamped with the system
 * properties IoT Hub adds, and read back from a position. Device edges call receive() and acknowledge once it
 * resolves (the event is durable); reader edges use partitionInfo(), reader() and onAppended(), never the log.
 */
import type { EventLog, LoggedEvent, PartitionInfo } from "../store/event-log";
import { HubError } from "./errors";
import { EventPosition, PartitionReader, firstSequenceOf } from "./event-reader";

export type { EventPosition, LoggedEvent, PartitionInfo, PartitionReader };

/** IoT Hub's limit for a device-to-cloud message, properties included. */
export const MAX_TELEMETRY_BYTES = 256 * 1024;

export interface DeviceToCloudMessage {
  deviceId: string;
  moduleId?: string;
  body: Buffer;
  /** The URL-encoded property bag of the MQTT topic (`%24.mid=1&%24.ct=application%2Fjson&temp=high`). */
  propertyBag: string;
  /** How the identity authenticated: "sas" or "x509". */
  authType?: string;
}

export interface IdentityLookup {
  find(deviceId: string, moduleId?: string): { generationId: string } | undefined;
}

/** MQTT system property keys and the AMQP message property each becomes. */
const MESSAGE_PROPERTIES: Record<string, string> = {
  "$.mid": "message_id",
  "$.cid": "correlation_id",
  "$.uid": "user_id",
  "$.ct": "content_type",
  "$.ce": "content_encoding",
  "$.to": "to",
};

export class TelemetryTooLargeError extends Error {}

/** `iothub-connection-auth-method` as IoT Hub writes it; one string per scope and type, made once. */
const authMethods = new Map<string, string>();
function authMethod(scope: string, type: string): string {
  const key = `${scope}/${type}`;
  let text = authMethods.get(key);
  if (!text) {
    text = JSON.stringify({ scope, type, issuer: "iothub", acceptingIpFilterRule: null });
    authMethods.set(key, text);
  }
  return text;
}

/** Splits a topic's property bag into AMQP message properties, the output name and application properties. */
export function parsePropertyBag(bag: string): {
  messageProperties: Record<string, string>;
  application: Record<string, string>;
  outputName?: string;
} {
  const messageProperties: Record<string, string> = {};
  const application: Record<string, string> = {};
  let outputName: string | undefined;
  for (const pair of bag.split("&")) {
    if (!pair) continue;
    const at = pair.indexOf("=");
    const key = decode(at < 0 ? pair : pair.slice(0, at));
    const value = at < 0 ? "" : decode(pair.slice(at + 1));
    if (key === "$.on") outputName = value;
    else if (MESSAGE_PROPERTIES[key]) messageProperties[MESSAGE_PROPERTIES[key]] = value;
    else if (!key.startsWith("$.")) application[key] = value;
  }
  return { messageProperties, application, outputName };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, "%20"));
  } catch {
    return text;
  }
}

/** Identities whose annotations are kept made (the same object each time, so the log can reuse its encoding). */
const MAX_CACHED_IDENTITIES = 10_000;
/** Property bags kept parsed: at most this many, each at most this long (bounded memory whatever devices send). */
const MAX_CACHED_BAGS = 1000;
const MAX_CACHED_BAG_LENGTH = 1024;

interface ParsedProperties {
  messageProperties: Readonly<Record<string, string>>;
  application: Readonly<Record<string, string>>;
}

export class Telemetry {
  private readonly annotations = new Map<string, Record<string, string | number>>();
  private readonly bags = new Map<string, ParsedProperties>();

  constructor(
    private readonly log: EventLog,
    private readonly identities: IdentityLookup,
  ) {}

  get partitionCount(): number {
    return this.log.partitions.length;
  }

  /** When the log was first created (the Event Hubs entity's `created_at`). */
  get createdAt(): Date {
    return this.log.createdAt;
  }

  /** Sequence numbers, offset and time of one partition; undefined when there is no such partition. */
  partitionInfo(partitionId: number): PartitionInfo | undefined {
    return this.log.partitions[partitionId]?.info();
  }

  /** A cursor over one partition from `position`; 404 NotFound when the partition does not exist. */
  reader(partitionId: number, position: EventPosition): PartitionReader {
    const partition = Number.isInteger(partitionId) ? this.log.partitions[partitionId] : undefined;
    if (!partition) {
      const text = `Partition ${partitionId} does not exist (the hub has ${this.partitionCount})`;
      throw new HubError(404, "NotFound", text);
    }
    return new PartitionReader(partition, firstSequenceOf(partition, position));
  }

  /** Calls `listener` with the partition id each time durable events were added to it; returns the unsubscribe. */
  onAppended(listener: (partitionId: number) => void): () => void {
    this.log.on("appended", listener);
    return () => void this.log.off("appended", listener);
  }

  /** Appends the message to its device's partition; resolves once it is durable (then acknowledge the device). */
  receive(message: DeviceToCloudMessage): Promise<LoggedEvent> {
    if (message.body.length + message.propertyBag.length > MAX_TELEMETRY_BYTES) {
      return Promise.reject(new TelemetryTooLargeError("a device-to-cloud message may hold at most 256 KB"));
    }
    const { messageProperties, application } = this.propertiesOf(message.propertyBag);
    const identity = this.identities.find(message.deviceId, message.moduleId);
    const annotations = this.annotationsOf(message, identity?.generationId ?? "");
    return this.log.append(message.deviceId, {
      body: message.body,
      properties: application,
      messageProperties,
      annotations,
    });
  }

  /**
   * The properties of a bag, parsed once while the bag keeps coming back (a device that sets no message id sends the
   * same bag with every message). Frozen, as they are shared by every event that has them.
   */
  private propertiesOf(bag: string): ParsedProperties {
    let parsed = this.bags.get(bag);
    if (parsed) return parsed;
    const { messageProperties, application, outputName } = parsePropertyBag(bag);
    if (outputName !== undefined) application["iothub-outputname"] = outputName;
    parsed = { messageProperties: Object.freeze(messageProperties), application: Object.freeze(application) };
    if (bag.length > MAX_CACHED_BAG_LENGTH) return parsed;
    if (this.bags.size >= MAX_CACHED_BAGS) this.bags.clear();
    this.bags.set(bag, parsed);
    return parsed;
  }

  /** The annotations IoT Hub stamps on every message of one identity (connection, auth method, generation). */
  private annotationsOf(message: DeviceToCloudMessage, generationId: string): Record<string, string | number> {
    const key = `${message.deviceId}\n${message.moduleId ?? ""}\n${message.authType ?? ""}\n${generationId}`;
    let annotations = this.annotations.get(key);
    if (annotations) return annotations;
    annotations = {
      "iothub-connection-device-id": message.deviceId,
      "iothub-connection-auth-method": authMethod(
        message.moduleId === undefined ? "device" : "module",
        message.authType ?? "sas",
      ),
      "iothub-connection-auth-generation-id": generationId,
      "iothub-message-source": "Telemetry",
    };
    if (message.moduleId !== undefined) annotations["iothub-connection-module-id"] = message.moduleId;
    if (this.annotations.size >= MAX_CACHED_IDENTITIES) this.annotations.clear();
    this.annotations.set(key, Object.freeze(annotations));
    return annotations;
  }
}
