/**
 * The hub's one core, behind every protocol edge: identities, twins, policies, persistent sessions, and the events
 * the edges listen to. Edges call it and await it; it alone talks to the store. Nothing calls back up.
 */
import type { Store } from "../store/store";
import { Durability } from "./durability";
import { bulkImport } from "./bulk";
import { EtagCounter } from "./etags";
import { HubEvents } from "./events";
import { Identities } from "./identities";
import { DirectMethods } from "./methods";
import { Policies } from "./policies";
import type { StoredRecord } from "./records";
import { Sessions } from "./sessions";
import type { Json, JsonObject } from "./twin-document";
import { Twins } from "./twins";

export class HubCore {
  readonly events = new HubEvents();
  readonly policies: Policies;
  readonly sessions: Sessions;
  readonly identities: Identities;
  readonly twins: Twins;
  readonly methods: DirectMethods;

  private readonly durability: Durability;

  private constructor(
    readonly hostName: string,
    private readonly store: Store<StoredRecord>,
  ) {
    const etags = new EtagCounter(store);
    this.durability = new Durability(store);
    this.policies = new Policies(store);
    this.sessions = new Sessions(store, this.durability);
    this.identities = new Identities(store, this.durability, etags, this.sessions, this.events);
    this.twins = new Twins(this.durability, this.identities, this.events);
    this.methods = new DirectMethods(this.identities, this.events);
  }

  /** Loads the state in the store; resolves once what loading wrote (new policies, say) is durable. */
  static async open(hostName: string, store: Store<StoredRecord>): Promise<HubCore> {
    const core = new HubCore(hostName, store);
    await store.sync();
    return core;
  }

  /** Resolves once every change made so far is durable: reads wait for it, so they never show what a crash could undo. */
  durable(): Promise<void> {
    return this.durability.settled();
  }

  bulk(body: Json): Promise<JsonObject> {
    return bulkImport(this.identities, () => this.durability.committed(), this.events, body);
  }

  close(): Promise<void> {
    this.methods.cancelAll();
    return this.store.close();
  }
}
