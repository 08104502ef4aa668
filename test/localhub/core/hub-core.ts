/**
 * The hub's one core, behind every protocol edge: identities, twins, policies, persistent sessions, direct methods,
 * cloud-to-device queues, telemetry, and the events the edges listen to. Edges call it and await it; it alone talks
 * to the stores (hub.ts opens them). Nothing calls back up.
 */
import type { EventLog } from "../store/event-log";
import type { Store } from "../store/store";
import { CloudToDeviceQueue, CloudToDeviceRecord } from "./cloud-to-device";
import { Durability } from "./durability";
import { bulkImport } from "./bulk";
import { EtagCounter } from "./etags";
import { HubEvents } from "./events";
import { Identities } from "./identities";
import { DirectMethods } from "./methods";
import { Policies } from "./policies";
import { Provisioning } from "./provisioning/provisioning";
import type { StoredRecord } from "./records";
import { Sessions } from "./sessions";
import { Telemetry } from "./telemetry";
import type { Json, JsonObject } from "./twin-document";
import { Twins } from "./twins";

/** What the core keeps its state in: identities and twins, the cloud-to-device queues, the telemetry log. */
export interface HubStores {
  state: Store<StoredRecord>;
  cloudToDevice: Store<CloudToDeviceRecord>;
  events: EventLog;
}

export class HubCore {
  readonly events: HubEvents;
  readonly policies: Policies;
  readonly sessions: Sessions;
  readonly identities: Identities;
  readonly twins: Twins;
  readonly methods: DirectMethods;
  readonly cloudToDevice: CloudToDeviceQueue;
  readonly telemetry: Telemetry;
  /** The Device Provisioning Service that assigns devices to this hub (core/provisioning/). */
  readonly provisioning: Provisioning;

  private readonly durability: Durability;

  private constructor(
    readonly hostName: string,
    private readonly stores: HubStores,
    log: (line: string) => void,
  ) {
    const store = stores.state;
    this.events = new HubEvents(log);
    const etags = new EtagCounter(store);
    this.durability = new Durability(store);
    this.policies = new Policies(store);
    this.sessions = new Sessions(store, this.durability);
    this.identities = new Identities(store, this.durability, etags, this.sessions, this.events, (deviceId) =>
      this.cloudToDevice.waitingFor(deviceId),
    );
    this.twins = new Twins(this.durability, this.identities, this.events);
    this.methods = new DirectMethods(this.identities, this.events);
    this.cloudToDevice = new CloudToDeviceQueue(stores.cloudToDevice, this.identities, log);
    this.telemetry = new Telemetry(stores.events, this.identities);
    this.provisioning = new Provisioning(store, this.durability, this.identities, this.twins, hostName);
    // A deleted device's queue goes with it (feedback Purged where asked), as on IoT Hub: a device created again
    // under the same id must not get the old messages.
    this.events.on("revoked", ({ key }) => {
      if (key.includes("/") || this.identities.find(key)) return;
      this.cloudToDevice.purge(key).catch((err: Error) => log(`C2D purge of ${key} failed: ${err.message}`));
    });
  }

  /** Loads the state in the stores; resolves once what loading wrote (new policies, say) is durable. */
  static async open(hostName: string, stores: HubStores, log: (line: string) => void = () => {}): Promise<HubCore> {
    const core = new HubCore(hostName, stores, log);
    await stores.state.sync();
    return core;
  }

  /** Resolves once every change made so far is durable: reads wait for it, so they never show what a crash could undo. */
  durable(): Promise<void> {
    return this.durability.settled();
  }

  bulk(body: Json): Promise<JsonObject> {
    return bulkImport(this.identities, () => this.durability.committed(), this.events, body);
  }

  async close(): Promise<void> {
    this.methods.cancelAll();
    this.cloudToDevice.close();
    await this.stores.events.close();
    await this.stores.cloudToDevice.close();
    await this.stores.state.close();
  }
}
