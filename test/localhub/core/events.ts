/**
 * What the core announces to the edges, always after the change is durable and after the call that made it has
 * returned its result: a desired-properties patch for one identity, an identity whose connections must end, a direct
 * method to deliver. Edges subscribe; the core never calls an edge directly, and no listener can fail a change.
 */
import { EventEmitter } from "node:events";
import type { MethodRequest } from "./methods";
import type { JsonObject } from "./twin-document";

export interface DesiredChange {
  deviceId: string;
  moduleId?: string;
  patch: JsonObject;
  version: number;
}

export interface Revocation {
  /** `device` or `device/module`. */
  key: string;
  /** A device's revocation ends its modules' connections too. */
  withModules: boolean;
}

interface HubEventMap {
  desired: [DesiredChange];
  revoked: [Revocation];
  /** A direct method the core handed to the identity's connection (the core tracks it; the edge only sends it). */
  method: [MethodRequest];
}

type Listener = (...args: never[]) => void;

/**
 * emit() puts the event in an outbox drained by setImmediate: the call that made the change, and whoever awaits it
 * (the REST edge writing its answer), go first. Each listener then runs on its own: one that throws is logged and
 * neither stops the others nor fails the change.
 */
export class HubEvents extends EventEmitter<HubEventMap> {
  private outbox: { name: keyof HubEventMap; args: unknown[] }[] = [];

  constructor(private readonly log: (line: string) => void = () => {}) {
    super();
    this.setMaxListeners(0);
  }

  override emit<K extends keyof HubEventMap>(name: K, ...args: HubEventMap[K]): boolean {
    if (!this.outbox.length) setImmediate(() => this.drain());
    this.outbox.push({ name, args });
    return this.listenerCount(name) > 0;
  }

  private drain(): void {
    const events = this.outbox;
    this.outbox = [];
    for (const { name, args } of events) {
      for (const listener of this.listeners(name) as Listener[]) {
        try {
          (listener as (...a: unknown[]) => void)(...args);
        } catch (err) {
          this.log(`event ${name}: a listener failed, the change stands: ${(err as Error)?.message ?? String(err)}`);
        }
      }
    }
  }
}
