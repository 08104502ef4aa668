/**
 * The service-facing AMQP 1.0 edge (rhea 3 as the server): TLS on 5671 and WebSockets handed over by the HTTPS
 * server, SASL, connection limits, and routing each link to the file that serves its address.
 */
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { Connection, Container, EventContext, Receiver, Sender, create_container } from "rhea";
import { WebSocket, createWebSocketStream } from "ws";
import {
  DEFAULT_TLS_HANDSHAKE_MS,
  LOOPBACK,
  closeServer,
  createTlsServer,
  listenOrFallBack,
  presentedChain,
} from "../../listeners";
import { ConnectionGrants, hubName } from "./auth";
import type { AmqpEdgeDeps, ConnectionState, LinkHandler } from "./link-context";
import { answerLinkProperties, azureFrameOptions, writeFramesInFull } from "./azure-frames";
import { ConnectionRules } from "./connection-rules";
import { DeviceConnections } from "./device-connections";
import { FrameGuard, Refusal, closeFrames } from "./frame-guard";
import {
  CHANNEL_MAX,
  IDLE_TIMEOUT_MS,
  MAX_CONNECTIONS,
  MAX_FRAME_SIZE,
  MAX_UNREAD_BYTES,
  OPEN_TIMEOUT_MS,
} from "./limits";
import { cbsMechanism, plainMechanism, principalOf } from "./sasl";
import { routeLink } from "./routes";
import { adapt, capIncomingMessages } from "./incoming";

import { batchWrites } from "../write-batch";

export const DEFAULT_AMQPS_PORT = 5671;
/** How long a refused connection's CLOSE frame may take to leave before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export interface AmqpEdgeOptions {
  tls: { key: string; cert: string };
  /**
   * 5671 unless given; 0 picks a free port. Without it, on a system where binding 5671 is refused for lack of
   * privileges (EACCES; Linux only restricts ports below 1024 by default), the edge takes UNPRIVILEGED_AMQPS_PORT
   * and service clients reach it through port-redirect.cjs.
   */
  port?: number;
  /** CA certificates (PEM) that CA-signed X.509 devices chain to (the hub's DIR/client-cas/). */
  clientCas?: string[];
}

/** Limits a test may shorten (HubOptions.limits); the defaults are in limits.ts. */
export interface AmqpEdgeLimits {
  openTimeoutMs?: number;
}

export const UNPRIVILEGED_AMQPS_PORT = 15671;

export class AmqpEdge {
  readonly container: Container;
  readonly listening: string[] = [];
  port = 0;
  private readonly servers: net.Server[] = [];
  private readonly connections = new Map<Connection, ConnectionState>();
  private readonly streams = new Set<Duplex>();
  private readonly handlers = new WeakMap<Sender | Receiver, LinkHandler>();
  /** Connections that have not finished SASL and OPEN yet, each with the timer that drops it. */
  private readonly opening = new Map<Connection, NodeJS.Timeout>();
  private readonly openTimeoutMs: number;

  private served: AmqpEdgeDeps | undefined;
  private devices: DeviceConnections | undefined;

  constructor(
    readonly hostName: string,
    private readonly log: (line: string) => void,
    limits: AmqpEdgeLimits = {},
  ) {
    this.openTimeoutMs = limits.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    this.container = create_container({ id: hostName });
    this.wire();
  }

  /** Starts serving connections with the hub's state; until then (ports bound first) connections are closed. */
  serve(deps: AmqpEdgeDeps): void {
    // rhea types this table as any: it maps mechanism names to factories, plus the enable_* helpers.
    const mechanisms = this.container.sasl_server_mechanisms as {
      enable_anonymous(): void;
      PLAIN?: ReturnType<typeof plainMechanism>;
      MSSBCBS?: typeof cbsMechanism;
    };
    mechanisms.enable_anonymous();
    mechanisms.PLAIN = plainMechanism(deps.core);
    mechanisms.MSSBCBS = cbsMechanism;
    this.devices = new DeviceConnections(deps.core, deps.log);
    this.served = deps;
  }

  get deps(): AmqpEdgeDeps {
    if (!this.served) throw new Error("the AMQP edge is not serving yet");
    return this.served;
  }

  /** The Event Hubs entity name (the hub's name) and the host:port an Event Hubs client connects to. */
  get entityName(): string {
    return hubName(this.hostName);
  }

  get endpointHost(): string {
    return this.port === DEFAULT_AMQPS_PORT ? this.hostName : `${this.hostName}:${this.port}`;
  }

  /** Binds the port on both loopback addresses (PortError naming the fix if it cannot). */
  async listen(options: AmqpEdgeOptions): Promise<void> {
    let port = options.port ?? DEFAULT_AMQPS_PORT;
    try {
      for (const address of LOOPBACK) {
        // Asks for a client certificate without insisting, as 8883 does: X.509 devices send theirs.
        const server = createTlsServer(
          options.tls,
          DEFAULT_TLS_HANDSHAKE_MS,
          this.log,
          (socket) => this.acceptStream(socket, `amqps ${socket.remoteAddress}:${socket.remotePort}`, socket),
          options.clientCas,
        );
        this.servers.push(server);
        const fallBack = options.port === undefined && port === DEFAULT_AMQPS_PORT;
        const result = await listenOrFallBack(server, port, address, fallBack ? UNPRIVILEGED_AMQPS_PORT : undefined);
        port = result.port;
        if (!result.bound) continue;
        port = (server.address() as net.AddressInfo).port;
        this.listening.push(`amqps://${address.includes(":") ? `[${address}]` : address}:${port}`);
      }
    } catch (err) {
      await Promise.all(this.servers.map(closeServer));
      throw err;
    }
    this.port = port;
  }

  /**
   * Serves AMQP over a WebSocket the HTTPS server upgraded (path /$iothub/websocket, subprotocol AMQPWSB10); `tls` is
   * the HTTPS connection under it, whose client certificate authenticates an X.509 device as on 5671.
   */
  acceptWebSocket(ws: WebSocket, remote = "websocket", tls?: TLSSocket): void {
    this.acceptStream(createWebSocketStream(ws), `amqpws ${remote}`, tls);
  }

  acceptStream(stream: Duplex, label: string, tls?: TLSSocket): void {
    if (!this.served) {
      stream.destroy();
      return;
    }
    if (this.connections.size >= MAX_CONNECTIONS) {
      this.log(`AMQP refused ${label}: more than ${MAX_CONNECTIONS} connections`);
      stream.destroy();
      return;
    }
    stream.on("error", () => {});
    const azure = azureFrameOptions();
    const connection = this.container.create_connection({
      ...azure,
      container_id: this.hostName,
      max_frame_size: MAX_FRAME_SIZE,
      channel_max: CHANNEL_MAX,
      idle_time_out: IDLE_TIMEOUT_MS,
      receiver_options: { ...azure.receiver_options, autoaccept: false, credit_window: 100 },
    } as never);
    writeFramesInFull(connection);
    const devices = this.devices!;
    const state: ConnectionState = {
      label,
      grants: new ConnectionGrants({
        core: this.served.core,
        peer: () => {
          const certificate = tls instanceof TLSSocket ? tls.getPeerX509Certificate() : undefined;
          return certificate && { certificate, chainTrusted: tls!.authorized, chain: presentedChain(tls!) };
        },
        claim: (identity) => devices.claim(state, identity),
      }),
      handlers: new Set(),
      congested: () => stream.writableLength > MAX_UNREAD_BYTES,
      batchWrites: () => batchWrites(stream),
      close: (condition, description) => {
        this.log(`AMQP closing ${label}: ${description}`);
        // The device SDK answers a CLOSE alone by detaching each link cleanly and waits 45 s for answers that cannot
        // come; after an END it lets its links go at once (azure-iot-amqp-base amqp.js 'disconnecting'). So each
        // session ends first, with the error, then the connection closes.
        const sessions = new Set<{ close(error?: unknown): void }>();
        connection.each_link((link: { session?: { close(error?: unknown): void } }) => {
          if (link.session) sessions.add(link.session);
        });
        for (const session of sessions) session.close({ condition, description });
        connection.close({ condition, description });
        setTimeout(() => stream.destroy(), CLOSE_GRACE_MS).unref();
      },
    };
    stream.on("drain", () => state.handlers.forEach((handler) => handler.onSendable?.()));
    this.connections.set(connection, state);
    this.streams.add(stream);
    const openTimer = setTimeout(() => {
      this.log(`AMQP dropped ${label}: no SASL and OPEN within ${this.openTimeoutMs} ms`);
      stream.destroy();
    }, this.openTimeoutMs).unref();
    this.opening.set(connection, openTimer);
    stream.on("close", () => {
      clearTimeout(openTimer);
      this.opening.delete(connection);
      this.streams.delete(stream);
      this.closeConnection(connection);
    });
    let input: (bytes: Buffer) => void = () => {};
    const rules = new ConnectionRules();
    const guard = new FrameGuard({
      forward: (bytes) => {
        input(bytes);
        const capped = capIncomingMessages(connection);
        if (capped) this.log(`AMQP refused ${capped} from ${label}`);
      },
      inspect: (frame) => rules.inspect(frame),
      refuse: (refusal, phase) => this.refuse(connection, stream, label, refusal, phase),
    });
    const socket = adapt(stream, label, guard, (handler) => (input = handler));
    (connection as unknown as { accept(socket: unknown): void }).accept(socket);
  }

  /**
   * Ends a connection the guard refused, with one log line: an AMQP CLOSE carrying the condition once the AMQP
   * header was read (our own OPEN first if rhea has not answered one), then the socket after a grace period.
   */
  private refuse(connection: Connection, stream: Duplex, label: string, refusal: Refusal, phase: string): void {
    this.log(`AMQP refused ${label}: ${refusal.description} (${refusal.condition})`);
    const remote = (connection as unknown as { remote?: { open?: unknown } }).remote;
    if (phase === "amqp" && remote?.open) {
      connection.close(refusal);
      // rhea writes its CLOSE on the next tick; end the stream after it.
      setImmediate(() => stream.end());
    } else {
      if (phase === "amqp" && stream.writable) stream.write(closeFrames(this.hostName, refusal));
      stream.end();
    }
    setTimeout(() => stream.destroy(), CLOSE_GRACE_MS).unref();
  }

  private closeConnection(connection: Connection): void {
    const state = this.connections.get(connection);
    if (!state) return;
    this.connections.delete(connection);
    for (const handler of state.handlers) handler.onClose?.();
    state.handlers.clear();
    this.devices?.releaseAll(state);
  }

  private wire(): void {
    const c = this.container;
    const stateOf = (context: EventContext) => this.connections.get(context.connection);
    c.on("connection_open", (context: EventContext) => {
      const state = stateOf(context);
      if (!state) return;
      clearTimeout(this.opening.get(context.connection));
      this.opening.delete(context.connection);
      const principal = principalOf(context.connection);
      if (principal) {
        const { scope, expiresAtSeconds, ...policy } = principal;
        state.grants.add({ principal: { ...policy, scope }, scope, expiresAtSeconds });
      }
      this.log(`AMQP OPEN ${state.label}${principal ? ` as ${principal.keyName} (SASL PLAIN)` : ""}`);
    });
    const onOpen = (link: Sender | Receiver, role: "sender" | "receiver", context: EventContext) => {
      const state = stateOf(context);
      if (!state) return link.close({ condition: "amqp:internal-error", description: "unknown connection" });
      answerLinkProperties(link);
      const handler = routeLink({ deps: this.deps, edge: this, state }, link, role);
      if (handler) {
        this.handlers.set(link, handler);
        state.handlers.add(handler);
      }
    };
    c.on("sender_open", (context: EventContext) => onOpen(context.sender!, "sender", context));
    c.on("receiver_open", (context: EventContext) => onOpen(context.receiver!, "receiver", context));
    c.on("message", (context: EventContext) => this.handlers.get(context.receiver!)?.onMessage?.(context));
    c.on("sendable", (context: EventContext) => this.handlers.get(context.sender!)?.onSendable?.());
    for (const outcome of ["accepted", "released", "rejected", "modified"] as const) {
      c.on(outcome, (context: EventContext) => this.handlers.get(context.sender!)?.onOutcome?.(context, outcome));
    }
    const onLinkClose = (link: Sender | Receiver | undefined, context: EventContext) => {
      const handler = link && this.handlers.get(link);
      if (!handler) return;
      this.handlers.delete(link);
      stateOf(context)?.handlers.delete(handler);
      handler.onClose?.();
    };
    c.on("sender_close", (context: EventContext) => onLinkClose(context.sender, context));
    c.on("receiver_close", (context: EventContext) => onLinkClose(context.receiver, context));
    c.on("disconnected", (context: EventContext) => this.closeConnection(context.connection));
    c.on("connection_close", (context: EventContext) => this.closeConnection(context.connection));
    // Bad input of any kind ends in one log line, never in an uncaught exception.
    const complain = (what: string) => (context: EventContext | Error) => {
      const state = "connection" in context ? stateOf(context) : undefined;
      const error: unknown = (context as EventContext).error ?? context;
      const text = error instanceof Error ? error.message : JSON.stringify(error);
      this.log(`AMQP ${what} ${state?.label ?? ""}: ${text}`.slice(0, 300));
    };
    c.on("protocol_error", complain("protocol error, connection dropped"));
    c.on("error", complain("error"));
    for (const event of ["connection_error", "session_error", "sender_error", "receiver_error"]) {
      c.on(event, () => {});
    }
  }

  async stop(): Promise<void> {
    for (const stream of this.streams) stream.destroy();
    await Promise.all(this.servers.map(closeServer));
  }
}
