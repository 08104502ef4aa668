/**
 * One AMQP connection per device or module, as on MQTT (edges/mqtt/broker.ts `claim`): a connection that
 * authenticates as an identity another connection holds replaces it, and the registry's connection state follows.
 */
import type { HubCore } from "../../core/hub-core";
import { identityKey } from "../../core/records";
import type { DeviceIdentity } from "./auth";

/** What the registry needs of a connection: a label for the log and a way to end it with an AMQP error. */
export interface IdentityHolder {
  label: string;
  close(condition: string, description: string): void;
}

export class DeviceConnections {
  private readonly holders = new Map<string, IdentityHolder>();
  private readonly held = new Map<IdentityHolder, Map<string, DeviceIdentity>>();

  constructor(
    private readonly core: HubCore,
    private readonly log: (line: string) => void,
  ) {
    core.events.on("revoked", ({ key, withModules }) => {
      for (const [heldKey, holder] of [...this.holders]) {
        if (heldKey === key || (withModules && heldKey.startsWith(`${key}/`))) {
          holder.close("amqp:unauthorized-access", `${heldKey} was deleted, disabled or given new credentials`);
        }
      }
    });
  }

  /** `holder` now acts as `identity`; an older connection of the same identity is closed. Idempotent. */
  claim(holder: IdentityHolder, identity: DeviceIdentity): void {
    const key = identityKey(identity.deviceId, identity.moduleId);
    const previous = this.holders.get(key);
    if (previous === holder) return;
    this.holders.set(key, holder);
    let mine = this.held.get(holder);
    if (!mine) this.held.set(holder, (mine = new Map<string, DeviceIdentity>()));
    mine.set(key, identity);
    this.core.identities.setConnected(identity.deviceId, identity.moduleId, true);
    this.log(`AMQP CONNECT ${key} over ${holder.label}`);
    if (!previous) return;
    this.held.get(previous)?.delete(key);
    previous.close("amqp:connection:forced", `replaced by a new connection of ${key}`);
  }

  /** The connection ended: the identities it held are disconnected (unless another connection took them over). */
  releaseAll(holder: IdentityHolder): void {
    const mine = this.held.get(holder);
    if (!mine) return;
    this.held.delete(holder);
    for (const [key, identity] of mine) {
      if (this.holders.get(key) !== holder) continue;
      this.holders.delete(key);
      this.core.identities.setConnected(identity.deviceId, identity.moduleId, false);
      this.log(`AMQP DISCONNECT ${key} (${holder.label})`);
    }
  }
}
