/**
 * MQTT topic rules of the IoT hub: filter matching, the query part of `$iothub` topics, and which topics an identity
 * may subscribe to (its own twin, methods and message streams only).
 */
import { identityPath } from "../../core/records";

/** MQTT topic filter matching with `+` and `#`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length || (f[i] !== "+" && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** Splits "$iothub/twin/GET/?$rid=1" into its path and its query parameters. */
export function splitTopic(topic: string): { path: string; query: URLSearchParams } {
  const at = topic.indexOf("?");
  return at < 0
    ? { path: topic, query: new URLSearchParams() }
    : { path: topic.slice(0, at).replace(/\/$/, ""), query: new URLSearchParams(topic.slice(at + 1)) };
}

/** `devices/{dev}` or `devices/{dev}/modules/{mod}`: the root of an identity's own message topics. */
export function ownTopicRoot(deviceId: string, moduleId: string | undefined): string {
  return identityPath(deviceId, moduleId);
}

/** The topic filters an identity may subscribe to. */
export function mayReceive(filter: string, deviceId: string, moduleId: string | undefined): boolean {
  const own = ownTopicRoot(deviceId, moduleId);
  return (
    filter === "$iothub/twin/res/#" ||
    filter === "$iothub/twin/PATCH/properties/desired/#" ||
    filter === "$iothub/methods/POST/#" ||
    (moduleId === undefined && filter === `${own}/messages/devicebound/#`) ||
    (moduleId !== undefined && filter === `${own}/inputs/#`)
  );
}
