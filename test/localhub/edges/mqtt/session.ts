/**
 * One MQTT client connection: the byte stream, its parser and limits, keepalive, sending with backpressure, and the
 * dispatch of each packet kind to its handler (connect.ts, subscribe.ts, publish.ts).
 */
import type { X509Certificate } from "node:crypto";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import * as mqtt from "mqtt-packet";
import { MAX_TELEMETRY_BYTES } from "../../core/telemetry";
import { batchWrites } from "../write-batch";
import type { MqttEdge } from "./broker";
import { onCloudToDevicePuback } from "./cloud-to-device";
import { onConnect } from "./connect";
import { DelayLine, MAX_DELAYED_PACKETS } from "./delay-line";
import { onPublish } from "./publish";
import { onSubscribe, onUnsubscribe } from "./subscribe";
import { topicMatches } from "./topics";

/** Limits, also in the README's hub section. */
export const LIMITS = {
  /** A client must send CONNECT within this time after the TLS handshake. */
  connectTimeoutMs: 10_000,
  /** Largest packet before authentication: a CONNECT with a SAS token is well under 2 KB. */
  maxPacketBeforeConnectBytes: 16 * 1024,
  /** Largest packet after authentication: the hub's 256 KB message limit plus room for topic and properties. */
  maxPacketBytes: MAX_TELEMETRY_BYTES + 16 * 1024,
  /** Bytes queued for a client that does not read; past this it is disconnected, not buffered without end. */
  maxSendBufferBytes: 4 * 1024 * 1024,
};

export class Session {
  deviceId = "";
  moduleId: string | undefined;
  /** How CONNECT authenticated it, as telemetry's `iothub-connection-auth-method` names it. */
  authType: "sas" | "x509" = "sas";
  key = "";
  connected = false;
  cleanSession = false;
  readonly subscriptions = new Set<string>();
  readonly openedAt = Date.now();
  /** Set by a CONNECT for another service on the same port (edges/dps/mqtt.ts): it takes the packets after it. */
  packetHandler: ((session: Session, packet: mqtt.Packet) => Promise<void> | void) | undefined;
  private closed = false;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveMs = 0;
  /** The latency fault's queues, one per direction (core/faults.ts). */
  private readonly inbound = new DelayLine();
  private readonly outbound = new DelayLine();

  /**
   * @param tls the TLS connection under the stream: the stream itself on 8883, the HTTPS connection under a WebSocket
   *   on 443. Its client certificate authenticates X.509 devices on either port.
   */
  constructor(
    readonly edge: MqttEdge,
    readonly stream: Duplex,
    readonly transport: string,
    private readonly tls: TLSSocket | undefined = stream instanceof TLSSocket ? stream : undefined,
  ) {
    const parser = mqtt.parser({ protocolVersion: 4 });
    parser.on("packet", (packet: mqtt.Packet) => this.delayed(this.inbound, () => this.dispatch(packet)));
    parser.on("error", (err: Error) => this.close(`malformed packet: ${err.message}`));
    stream.on("data", (chunk: Buffer) => {
      if (this.closed) return;
      this.resetKeepalive();
      const buffered = parser.parse(chunk);
      // The parser keeps a packet's bytes until it is complete: refuse one that announces more than the limit.
      const announced = (parser as unknown as { packet?: { length?: number } }).packet?.length ?? 0;
      const limit = this.connected ? LIMITS.maxPacketBytes : LIMITS.maxPacketBeforeConnectBytes;
      if (Math.max(buffered, announced) > limit) this.close(`packet larger than ${limit} bytes`);
    });
    stream.on("error", () => this.close("connection error"));
    // A stream from a WebSocket ends ('end') without always closing: either means the client is gone.
    stream.on("end", () => this.close("connection closed by the client"));
    stream.on("close", () => this.close("connection closed by the client"));
    const connectTimeoutMs = edge.limits.connectTimeoutMs ?? LIMITS.connectTimeoutMs;
    this.keepaliveTimer = setTimeout(() => this.close("no CONNECT in time"), connectTimeoutMs);
  }

  /** The TLS client certificate, if the client sent one, and whether it chains to a configured client CA. */
  peerCertificate(): { certificate: X509Certificate; chainTrusted: boolean } | undefined {
    const certificate = this.tls?.getPeerX509Certificate();
    return certificate && { certificate, chainTrusted: this.tls!.authorized };
  }

  /** The TLS connection under the stream (the HTTPS one under a WebSocket). */
  get tlsConnection(): TLSSocket | undefined {
    return this.tls;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(packet: mqtt.Packet): void {
    if (this.closed) return;
    this.delayed(this.outbound, () => this.write(packet));
  }

  /** Runs `run` at once, or after the identity's latency fault, in order; a connection that piles up too much goes. */
  private delayed(line: DelayLine, run: () => void): void {
    const latency = this.connected ? this.edge.faults.latencyOf(this.key) : 0;
    if (!line.push(latency, () => !this.closed && run())) {
      this.close(`latency fault: more than ${MAX_DELAYED_PACKETS} packets held back`);
    }
  }

  private write(packet: mqtt.Packet): void {
    batchWrites(this.stream);
    this.stream.write(mqtt.generate(packet));
    if (this.stream.writableLength > LIMITS.maxSendBufferBytes) {
      this.close(`client does not read: more than ${LIMITS.maxSendBufferBytes} bytes waiting`);
    }
  }

  /** Publishes to the client if one of its subscriptions matches (QoS 0, as the hub sends twin and method topics). */
  deliver(topic: string, payload: string | Buffer): void {
    for (const filter of this.subscriptions) {
      if (topicMatches(filter, topic)) {
        this.send({ cmd: "publish", topic, payload, qos: 0, retain: false, dup: false });
        return;
      }
    }
  }

  /** Called by connect.ts once the client is authenticated: from now on, keepalive rules. */
  startKeepalive(seconds: number): void {
    this.keepaliveMs = seconds * 1000;
    clearTimeout(this.keepaliveTimer);
    this.resetKeepalive();
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.inbound.clear();
    this.outbound.clear();
    this.edge.forget(this);
    clearTimeout(this.keepaliveTimer);
    this.stream.end();
    this.stream.destroy();
    if (this.connected) {
      this.edge.release(this.key, this);
      this.edge.core.identities.setConnected(this.deviceId, this.moduleId, false);
      const seconds = ((Date.now() - this.openedAt) / 1000).toFixed(1);
      this.edge.log(`MQTT DISCONNECT ${this.key} (${reason}) after ${seconds}s`);
    } else if (reason !== "connection closed by the client") {
      this.edge.log(`MQTT connection dropped before CONNECT (${reason})`);
    }
  }

  /** A client that sends nothing for 1.5 keepalive periods is gone (MQTT 3.1.1, 3.1.2.10). */
  private resetKeepalive(): void {
    if (!this.connected || !this.keepaliveMs) return;
    clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => this.close("keepalive timeout"), this.keepaliveMs * 1.5);
  }

  private dispatch(packet: mqtt.Packet): void {
    if (this.closed) return;
    if (!this.connected && packet.cmd !== "connect") return this.close(`${packet.cmd} before CONNECT`);
    const failed = (err: unknown) => this.close(`internal error: ${(err as Error)?.message ?? String(err)}`);
    const handler = this.packetHandler;
    if (handler && packet.cmd !== "pingreq" && packet.cmd !== "disconnect") {
      return void Promise.resolve(handler(this, packet)).catch(failed);
    }
    switch (packet.cmd) {
      case "connect":
        return onConnect(this, packet);
      case "subscribe":
        return void onSubscribe(this, packet).catch(failed);
      case "unsubscribe":
        return void onUnsubscribe(this, packet).catch(failed);
      case "publish":
        return void onPublish(this, packet).catch(failed);
      case "pingreq":
        if (this.edge.faults.ignoresPings(this.key)) return this.edge.log(`FAULT ${this.key}: PINGREQ left unanswered`);
        return this.send({ cmd: "pingresp" });
      case "puback":
        return void onCloudToDevicePuback(this, packet, this.edge.core.cloudToDevice).catch(failed);
      case "disconnect":
        return this.close("client sent DISCONNECT");
      default:
        return this.close(`unsupported packet ${packet.cmd}`);
    }
  }
}
