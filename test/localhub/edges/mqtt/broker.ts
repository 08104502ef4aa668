/**
 * The MQTT edge's switchboard: the live session of each identity (one connection per identity: a new CONNECT drops
 * the old one), and the core's events routed to the right session.
 */
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { HubCore } from "../../core/hub-core";
import { identityKey } from "../../core/records";
import { Faults } from "../../core/faults";
import { deliverCloudToDevice } from "./cloud-to-device";
import { Session } from "./session";
import { deliverMethod } from "./methods";
import { pushDesired } from "./twin";

export class MqttEdge {
  private readonly sessions = new Map<string, Session>();
  /** Every open connection, authenticated or not: stopping the hub must not wait for a CONNECT that never comes. */
  private readonly open = new Set<Session>();

  constructor(
    readonly core: HubCore,
    readonly log: (line: string) => void,
    readonly limits: { connectTimeoutMs?: number } = {},
    /** Faults on demand (admin API, portal): dropped connections, refused CONNECTs, latency, unanswered pings. */
    readonly faults: Faults = new Faults(),
  ) {
    faults.on("drop", (key, reason) => this.sessions.get(key)?.close(reason));
    core.cloudToDevice.on("queued", (deviceId: string) => {
      const session = this.sessions.get(deviceId);
      if (session) deliverCloudToDevice(session, core.cloudToDevice);
    });
    core.events.on("desired", (change) => {
      const session = this.sessions.get(identityKey(change.deviceId, change.moduleId));
      if (session) pushDesired(session, change);
    });
    core.events.on("method", (request) => {
      // No session: the identity took the call on another edge (AMQP), which sends it.
      const session = this.sessions.get(request.key);
      if (session && !deliverMethod(session, request)) log(`MQTT METHOD ${request.key} rid=${request.rid} not sent`);
    });
    core.events.on("revoked", ({ key, withModules }) => {
      for (const [sessionKey, session] of this.sessions) {
        if (sessionKey === key || (withModules && sessionKey.startsWith(`${key}/`)))
          session.close("identity deleted, disabled or re-keyed");
      }
    });
  }

  /** Serves one client connection; `transport` only labels the log lines; `tls` is the TLS connection under it. */
  accept(stream: Duplex, transport: string, tls?: TLSSocket): void {
    this.open.add(new Session(this, stream, transport, tls));
  }

  /** A session that closed, authenticated or not. */
  forget(session: Session): void {
    this.open.delete(session);
  }

  /** Told of every session whose CONNECT was accepted (the hub's fd-pressure relief keeps those). */
  onEstablished?: (session: Session) => void;

  /** Registers a freshly authenticated session, dropping an older one of the same identity. */
  claim(key: string, session: Session): void {
    this.onEstablished?.(session);
    const previous = this.sessions.get(key);
    this.sessions.set(key, session);
    // The new connection says for itself whether it takes methods (connect.ts, subscribe.ts).
    if (previous) this.core.methods.unavailable(key);
    previous?.close("replaced by a new connection of the same identity");
  }

  release(key: string, session: Session): void {
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    this.core.methods.unavailable(key);
  }

  session(key: string): Session | undefined {
    return this.sessions.get(key);
  }

  closeAll(): void {
    for (const session of [...this.open]) session.close("hub stopping");
  }
}
