/**
 * The device-facing MQTT 3.1.1 edge, over any byte stream (TLS on 8883, or a WebSocket on 443): SAS-authenticated
 * CONNECT, the twin topics ($iothub/twin/GET, reported PATCH, desired PATCH pushed to the identity), telemetry,
 * keepalive. One session per identity: a new CONNECT for the same client id drops the old connection.
 */
import type { Duplex } from "node:stream";
import * as mqtt from "mqtt-packet";
import { authenticate } from "../../core/sas";
import { HubError, badRequest } from "../../core/errors";
import { DesiredChange, Registry, identityKey } from "../../core/registry";
import type { Json } from "../../core/twin-document";

const CONNECT_TIMEOUT_MS = 10_000;
const MAX_PAYLOAD_BYTES = 256 * 1024;

// CONNACK return codes of MQTT 3.1.1.
const UNACCEPTABLE_PROTOCOL = 1;
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

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
function splitTopic(topic: string): { path: string; query: URLSearchParams } {
  const at = topic.indexOf("?");
  return at < 0
    ? { path: topic, query: new URLSearchParams() }
    : { path: topic.slice(0, at).replace(/\/$/, ""), query: new URLSearchParams(topic.slice(at + 1)) };
}

export class MqttEdge {
  private readonly sessions = new Map<string, Session>();

  constructor(
    readonly registry: Registry,
    readonly log: (line: string) => void,
  ) {
    registry.on("desired", (change: DesiredChange) =>
      this.sessions.get(identityKey(change.deviceId, change.moduleId))?.pushDesired(change),
    );
    registry.on("revoked", (key: string, withModules: boolean) => {
      for (const [sessionKey, session] of this.sessions) {
        if (sessionKey === key || (withModules && sessionKey.startsWith(`${key}/`)))
          session.close("identity deleted, disabled or re-keyed");
      }
    });
  }

  /** Serves one client connection; `transport` only labels the log lines. */
  accept(stream: Duplex, transport: string): void {
    new Session(this, stream, transport);
  }

  /** Registers a freshly authenticated session, dropping an older one of the same identity. */
  claim(key: string, session: Session): void {
    const previous = this.sessions.get(key);
    this.sessions.set(key, session);
    previous?.close("replaced by a new connection of the same identity");
  }

  release(key: string, session: Session): void {
    if (this.sessions.get(key) === session) this.sessions.delete(key);
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  closeAll(): void {
    for (const session of [...this.sessions.values()]) session.close("hub stopping");
  }
}

class Session {
  private deviceId = "";
  private moduleId: string | undefined;
  private key = "";
  private connected = false;
  private closed = false;
  private cleanSession = false;
  private readonly subscriptions = new Set<string>();
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveMs = 0;
  private readonly openedAt = Date.now();

  constructor(
    private readonly edge: MqttEdge,
    private readonly stream: Duplex,
    private readonly transport: string,
  ) {
    const parser = mqtt.parser({ protocolVersion: 4 });
    parser.on("packet", (packet: mqtt.Packet) => this.onPacket(packet));
    parser.on("error", (err: Error) => this.close(`malformed packet: ${err.message}`));
    stream.on("data", (chunk: Buffer) => {
      if (this.closed) return;
      this.resetKeepalive();
      parser.parse(chunk);
    });
    stream.on("error", () => this.close("connection error"));
    stream.on("close", () => this.close("connection closed by the client"));
    this.keepaliveTimer = setTimeout(() => this.close("no CONNECT in time"), CONNECT_TIMEOUT_MS);
  }

  private get name(): string {
    return this.key || "(not connected)";
  }

  private send(packet: mqtt.Packet): void {
    if (!this.closed) this.stream.write(mqtt.generate(packet));
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.keepaliveTimer);
    this.stream.end();
    this.stream.destroy();
    if (this.connected) {
      this.edge.release(this.key, this);
      this.edge.registry.setConnected(this.deviceId, this.moduleId, false);
      const seconds = ((Date.now() - this.openedAt) / 1000).toFixed(1);
      this.edge.log(`MQTT DISCONNECT ${this.name} (${reason}) after ${seconds}s`);
    }
  }

  /** A client that sends nothing for 1.5 keepalive periods is gone (MQTT 3.1.1, 3.1.2.10). */
  private resetKeepalive(): void {
    if (!this.connected || !this.keepaliveMs) return;
    clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => this.close("keepalive timeout"), this.keepaliveMs * 1.5);
  }

  private onPacket(packet: mqtt.Packet): void {
    if (this.closed) return;
    if (!this.connected && packet.cmd !== "connect") return this.close(`${packet.cmd} before CONNECT`);
    switch (packet.cmd) {
      case "connect":
        return this.onConnect(packet);
      case "subscribe":
        return this.onSubscribe(packet);
      case "unsubscribe":
        for (const topic of packet.unsubscriptions) this.subscriptions.delete(topic);
        this.rememberSubscriptions();
        return this.send({ cmd: "unsuback", messageId: packet.messageId, granted: [] });
      case "publish":
        return void this.onPublish(packet);
      case "pingreq":
        return this.send({ cmd: "pingresp" });
      case "puback":
        return; // acknowledgements of our QoS 1 deliveries need no further action
      case "disconnect":
        return this.close("client sent DISCONNECT");
      default:
        return this.close(`unsupported packet ${packet.cmd}`);
    }
  }

  private refuse(returnCode: number, why: string, started: bigint): void {
    this.send({ cmd: "connack", returnCode, sessionPresent: false });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.edge.log(
      `MQTT CONNECT ${this.deviceId ? identityKey(this.deviceId, this.moduleId) : "?"} ${returnCode} refused (${why}) ${ms.toFixed(1)}ms`,
    );
    this.close(why);
  }

  private onConnect(packet: mqtt.IConnectPacket): void {
    const started = process.hrtime.bigint();
    if (this.connected) return this.close("second CONNECT");
    if (packet.protocolVersion !== 4)
      return this.refuse(UNACCEPTABLE_PROTOCOL, "only MQTT 3.1.1 is supported", started);
    const parts = (packet.clientId ?? "").split("/");
    if (!parts[0] || parts.length > 2 || (parts.length === 2 && !parts[1])) {
      return this.refuse(IDENTIFIER_REJECTED, "client id must be '<device>' or '<device>/<module>'", started);
    }
    this.deviceId = parts[0];
    this.moduleId = parts[1];
    const hostName = this.edge.registry.hostName;
    if (!(packet.username ?? "").toLowerCase().startsWith(`${hostName}/${packet.clientId}/`.toLowerCase())) {
      return this.refuse(
        BAD_USERNAME_OR_PASSWORD,
        `username must start with '${hostName}/${packet.clientId}/'`,
        started,
      );
    }
    try {
      const principal = authenticate(this.edge.registry, packet.password?.toString("utf8"));
      const allowed =
        principal.kind === "identity"
          ? principal.deviceId === this.deviceId && principal.moduleId === this.moduleId
          : principal.rights.includes("DeviceConnect");
      if (!allowed)
        throw new HubError(
          401,
          "IotHubUnauthorizedAccess",
          `the token is not valid for ${this.deviceId}${this.moduleId ? `/${this.moduleId}` : ""}`,
        );
      const identity = this.edge.registry.findIdentity(this.deviceId, this.moduleId);
      const device = this.edge.registry.findIdentity(this.deviceId);
      if (!identity) throw new HubError(401, "IotHubUnauthorizedAccess", "no such device or module");
      if (device?.status === "disabled") throw new HubError(401, "IotHubUnauthorizedAccess", "device is disabled");
    } catch (err) {
      return this.refuse(NOT_AUTHORIZED, err instanceof Error ? err.message : String(err), started);
    }
    this.key = identityKey(this.deviceId, this.moduleId);
    this.connected = true;
    // Clean session false (what the Azure SDKs send) resumes the identity's earlier subscriptions: the SDK does not
    // subscribe again after a reconnect, it expects the hub to remember.
    this.cleanSession = packet.clean === true;
    const saved = packet.clean ? undefined : this.edge.registry.sessionSubscriptions(this.key);
    if (packet.clean) this.edge.registry.saveSession(this.key, null);
    for (const topic of saved ?? []) this.subscriptions.add(topic);
    this.keepaliveMs = (packet.keepalive ?? 0) * 1000;
    this.resetKeepalive();
    if (!this.keepaliveMs) clearTimeout(this.keepaliveTimer);
    this.edge.claim(this.key, this);
    this.edge.registry.setConnected(this.deviceId, this.moduleId, true);
    this.send({ cmd: "connack", returnCode: 0, sessionPresent: saved !== undefined });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.edge.log(`MQTT CONNECT ${this.key} 0 accepted over ${this.transport} ${ms.toFixed(1)}ms`);
  }

  /** The topics an identity may subscribe to: its own twin, methods, and its own message streams. */
  private mayReceive(filter: string): boolean {
    const own =
      this.moduleId === undefined ? `devices/${this.deviceId}` : `devices/${this.deviceId}/modules/${this.moduleId}`;
    return (
      filter === "$iothub/twin/res/#" ||
      filter === "$iothub/twin/PATCH/properties/desired/#" ||
      filter === "$iothub/methods/POST/#" ||
      (this.moduleId === undefined && filter === `${own}/messages/devicebound/#`) ||
      (this.moduleId !== undefined && filter === `${own}/inputs/#`)
    );
  }

  private onSubscribe(packet: mqtt.ISubscribePacket): void {
    const granted = packet.subscriptions.map(({ topic, qos }) => {
      if (!this.mayReceive(topic)) return 128;
      this.subscriptions.add(topic);
      return Math.min(qos, 1);
    });
    this.rememberSubscriptions();
    this.edge.log(
      `MQTT SUBSCRIBE ${this.key} ${packet.subscriptions.map((s, i) => `${s.topic}=${granted[i]}`).join(" ")}`,
    );
    void this.edge.registry.store.sync().then(() => this.send({ cmd: "suback", messageId: packet.messageId, granted }));
  }

  private rememberSubscriptions(): void {
    if (!this.cleanSession) this.edge.registry.saveSession(this.key, [...this.subscriptions]);
  }

  private deliver(topic: string, payload: string): void {
    if ([...this.subscriptions].some((filter) => topicMatches(filter, topic))) {
      this.send({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false });
    }
  }

  pushDesired(change: DesiredChange): void {
    this.deliver(
      `$iothub/twin/PATCH/properties/desired/?$version=${change.version}`,
      JSON.stringify({ ...change.patch, $version: change.version }),
    );
  }

  private async onPublish(packet: mqtt.IPublishPacket): Promise<void> {
    const started = process.hrtime.bigint();
    if (packet.qos === 2) return this.close("QoS 2 is not supported");
    if (packet.payload.length > MAX_PAYLOAD_BYTES) return this.close("message larger than 256 KB");
    const { path, query } = splitTopic(packet.topic);
    const own =
      this.moduleId === undefined ? `devices/${this.deviceId}` : `devices/${this.deviceId}/modules/${this.moduleId}`;

    if (path.startsWith(`${own}/messages/events`)) {
      this.edge.log(`MQTT TELEMETRY ${this.key} ${packet.payload.length} bytes`);
      if (packet.qos === 1) this.send({ cmd: "puback", messageId: packet.messageId });
      return;
    }
    if (path !== "$iothub/twin/GET" && path !== "$iothub/twin/PATCH/properties/reported") {
      return this.close(`publish to a topic it does not own: ${packet.topic.slice(0, 200)}`);
    }

    const rid = query.get("$rid") ?? "";
    let status = 200;
    let responseTopic: string;
    let body = "";
    try {
      if (path === "$iothub/twin/GET") {
        body = JSON.stringify(this.edge.registry.deviceTwin(this.deviceId, this.moduleId));
        responseTopic = `$iothub/twin/res/200/?$rid=${rid}`;
      } else {
        let patch: Json;
        try {
          patch = JSON.parse(packet.payload.toString("utf8")) as Json;
        } catch {
          throw badRequest("the reported properties patch is not valid JSON");
        }
        const version = this.edge.registry.patchReported(this.deviceId, this.moduleId, patch);
        await this.edge.registry.store.sync();
        status = 204;
        responseTopic = `$iothub/twin/res/204/?$rid=${rid}&$version=${version}`;
      }
    } catch (err) {
      const hubError = err instanceof HubError ? err : new HubError(500, "ServerError", "the local hub failed");
      status = hubError.status;
      body = hubError.toMqttBody();
      responseTopic = `$iothub/twin/res/${status}/?$rid=${rid}`;
    }
    if (packet.qos === 1) this.send({ cmd: "puback", messageId: packet.messageId });
    this.deliver(responseTopic, body);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.edge.log(`MQTT PUBLISH ${this.key} ${path} ${status} ${ms.toFixed(1)}ms`);
  }
}
