/**
 * Persistent MQTT sessions: the subscriptions of an identity that connected with clean session false. The Azure SDKs
 * do not subscribe again after a reconnect, so these outlive connections and restarts. The MQTT edge owns the live
 * connections; the core owns what must be durable about them.
 */
import type { Store } from "../store/store";
import type { Durability } from "./durability";
import { SESSION_PREFIX, StoredRecord } from "./records";

export class Sessions {
  private readonly saved = new Map<string, string[]>();

  constructor(
    private readonly store: Store<StoredRecord>,
    private readonly durability: Durability,
  ) {
    for (const [key, record] of store.entries) {
      if (key.startsWith(SESSION_PREFIX)) this.saved.set(key.slice(SESSION_PREFIX.length), record as string[]);
    }
  }

  subscriptions(key: string): string[] | undefined {
    return this.saved.get(key);
  }

  /** Stores a session's subscriptions (null ends it); resolves when durable. */
  async save(key: string, subscriptions: string[] | null): Promise<void> {
    this.record(key, subscriptions);
    await this.durability.committed();
  }

  /** Ends the sessions of an identity (and of its modules); durable at the caller's next sync. */
  endAll(key: string, withModules: boolean): void {
    for (const sessionKey of [...this.saved.keys()]) {
      if (sessionKey === key || (withModules && sessionKey.startsWith(`${key}/`))) this.record(sessionKey, null);
    }
  }

  private record(key: string, subscriptions: string[] | null): void {
    const current = this.saved.get(key);
    if (subscriptions === null) {
      if (!current) return;
      this.saved.delete(key);
    } else {
      if (current && current.length === subscriptions.length && current.every((s, i) => s === subscriptions[i])) return;
      this.saved.set(key, subscriptions);
    }
    this.store.put(SESSION_PREFIX + key, subscriptions);
  }
}
