/**
 * Direct methods: a service call waits for the identity to be reachable (up to connectTimeoutInSeconds), is handed to
 * the edge that holds the identity's connection (a 'method' event), and ends with the device's answer or a timeout.
 * The edges say which identities can take methods (available/unavailable); the core alone decides when a call is
 * sent. Nothing here is durable: a call in flight when the hub stops fails, as its HTTPS request does.
 */
import { HubError, badRequest, deviceNotOnline, methodResponseTimeout } from "./errors";
import type { HubEvents } from "./events";
import type { Identities } from "./identities";
import { identityKey } from "./records";
import { Json, JsonObject, isObject } from "./twin-document";

export const METHOD_TIMEOUT_LIMITS = { minResponse: 5, maxResponse: 300, maxConnect: 300 };
export const MAX_METHOD_PAYLOAD_BYTES = 128 * 1024;
/** Calls waiting for a device or its answer at once; past this the hub answers 429, as a throttled real hub does. */
export const MAX_PENDING_METHODS = 10_000;
/** The SDK gives up after (response + connect) seconds: answer a little before it does. */
const ANSWER_MARGIN_MS = 250;

export interface MethodRequest {
  key: string;
  rid: string;
  methodName: string;
  payload: Json;
}

interface Pending {
  request: MethodRequest;
  /** Handed to the identity's connection: now the answer is awaited. */
  sent: boolean;
  deadline: number;
  responseTimeoutSeconds: number;
  timer?: NodeJS.Timeout;
  resolve(answer: JsonObject): void;
  reject(err: Error): void;
}

function seconds(value: Json | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${name} must be a whole number of seconds from ${min} to ${max}`);
  }
  return value;
}

export class DirectMethods {
  private readonly pending = new Map<string, Pending>();
  /** Identities whose connection has subscribed to methods, with the edges that hold such a connection. */
  private readonly reachable = new Map<string, Set<string>>();
  private nextRid = 1;

  constructor(
    private readonly identities: Identities,
    private readonly events: HubEvents,
    private readonly maxPending = MAX_PENDING_METHODS,
  ) {}

  /** POST /twins/{id}[/modules/{mid}]/methods: resolves with `{ status, payload }` from the device. */
  invoke(deviceId: string, moduleId: string | undefined, body: Json): Promise<JsonObject> {
    this.identities.require(deviceId, moduleId);
    if (!isObject(body)) throw badRequest("the body must be a JSON object with methodName");
    const { methodName, payload = null } = body;
    if (typeof methodName !== "string" || !methodName || methodName.length > 256 || /[/?#+\s]/.test(methodName)) {
      throw badRequest("methodName must be a non-empty string without '/', '?', '#', '+' or spaces");
    }
    const { minResponse, maxResponse, maxConnect } = METHOD_TIMEOUT_LIMITS;
    const response = seconds(body.responseTimeoutInSeconds, 30, minResponse, maxResponse, "responseTimeoutInSeconds");
    const connect = seconds(body.connectTimeoutInSeconds, 0, 0, maxConnect, "connectTimeoutInSeconds");
    // The REST edge refused anything nested deeper than MAX_JSON_DEPTH, so this serialisation cannot overflow.
    if (Buffer.byteLength(JSON.stringify(payload)) > MAX_METHOD_PAYLOAD_BYTES) {
      throw badRequest(`the method payload is larger than ${MAX_METHOD_PAYLOAD_BYTES} bytes`);
    }
    if (this.pending.size >= this.maxPending) {
      throw new HubError(429, "ThrottlingException", `More than ${this.maxPending} direct method calls are waiting`);
    }
    const rid = String(this.nextRid++);
    const request: MethodRequest = { key: identityKey(deviceId, moduleId), rid, methodName, payload };
    return new Promise<JsonObject>((resolve, reject) => {
      const started = Date.now();
      const entry: Pending = {
        request,
        sent: false,
        deadline: started + (response + connect) * 1000 - ANSWER_MARGIN_MS,
        responseTimeoutSeconds: response,
        resolve,
        reject,
      };
      this.pending.set(rid, entry);
      if (this.reachable.has(request.key)) return this.send(entry);
      if (connect === 0) return this.fail(entry, deviceNotOnline(connect));
      entry.timer = setTimeout(() => this.fail(entry, deviceNotOnline(connect)), connect * 1000);
    });
  }

  /**
   * An identity can now receive methods (it connected and subscribed) on `edge`: the calls that wait for it go now.
   * A device may be connected over MQTT and AMQP at once: it stays reachable while one of them holds it.
   */
  available(key: string, edge = "mqtt"): void {
    const edges = this.reachable.get(key) ?? new Set<string>();
    this.reachable.set(key, edges.add(edge));
    for (const entry of [...this.pending.values()]) if (!entry.sent && entry.request.key === key) this.send(entry);
  }

  /** The identity's connection ended (or was replaced): calls wait for it again, up to their connect timeout. */
  unavailable(key: string, edge = "mqtt"): void {
    const edges = this.reachable.get(key);
    if (edges?.delete(edge) && !edges.size) this.reachable.delete(key);
  }

  /** The device's answer; ignored unless it comes from the identity the call went to. */
  respond(key: string, rid: string, status: number, payload: Json): void {
    const entry = this.pending.get(rid);
    if (!entry || !entry.sent || entry.request.key !== key) return;
    this.finish(entry);
    entry.resolve({ status, payload });
  }

  /** The identity answered with something that cannot be passed on: the call fails now with `err`. */
  refuse(key: string, rid: string, err: Error): void {
    const entry = this.pending.get(rid);
    if (!entry || !entry.sent || entry.request.key !== key) return;
    this.fail(entry, err);
  }

  /** Fails every call in flight (hub stopping). */
  cancelAll(): void {
    for (const entry of [...this.pending.values()])
      this.fail(entry, methodResponseTimeout(entry.responseTimeoutSeconds));
  }

  /** Hands the call to the identity's connection and starts waiting for the answer. */
  private send(entry: Pending): void {
    entry.sent = true;
    clearTimeout(entry.timer);
    const responseBy = Math.min(Date.now() + entry.responseTimeoutSeconds * 1000, entry.deadline);
    entry.timer = setTimeout(
      () => this.fail(entry, methodResponseTimeout(entry.responseTimeoutSeconds)),
      Math.max(0, responseBy - Date.now()),
    );
    this.events.emit("method", entry.request);
  }

  private fail(entry: Pending, err: Error): void {
    if (!this.pending.has(entry.request.rid)) return;
    this.finish(entry);
    entry.reject(err);
  }

  private finish(entry: Pending): void {
    clearTimeout(entry.timer);
    this.pending.delete(entry.request.rid);
  }
}
