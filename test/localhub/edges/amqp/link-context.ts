/**
 * What the AMQP edge (server.ts) hands the file that serves a link, and what it expects back: the types every link
 * handler imports, kept apart from the server so that a handler need not reach into it.
 */
import type { EventContext } from "rhea";
import type { HubCore } from "../../core/hub-core";
import type { ConnectionGrants } from "./auth";
import type { AmqpEdge } from "./server";

/** The edge serves links from the core alone (its C2D queues and telemetry included), like every other edge. */
export interface AmqpEdgeDeps {
  core: HubCore;
  log: (line: string) => void;
}

/** What a link handler may need of the edge and of its connection. */
export interface LinkContext {
  deps: AmqpEdgeDeps;
  edge: AmqpEdge;
  state: ConnectionState;
}

/** What the edge calls on a link it routed (all optional). */
export interface LinkHandler {
  onMessage?(context: EventContext): void;
  onSendable?(): void;
  onOutcome?(context: EventContext, outcome: "accepted" | "released" | "rejected" | "modified"): void;
  onClose?(): void;
}

export interface ConnectionState {
  label: string;
  grants: ConnectionGrants;
  handlers: Set<LinkHandler>;
  /** True while the client has not read what was sent to it: senders wait for 'drain' (they get onSendable). */
  congested(): boolean;
  /** What is sent until this turn of the event loop ends goes out in one write (write-batch.ts). */
  batchWrites(): void;
  /** Ends the connection with an AMQP error (CLOSE, then the socket). */
  close(condition: string, description: string): void;
}
