/**
 * The store of `--in-memory` hubs and of tests: keeps nothing across restarts, so every sync() succeeds at once.
 * Same contract as JournalStore (store.ts), minus the disk.
 */
import type { Store } from "./store";

export class MemoryStore<T> implements Store<T> {
  readonly entries = new Map<string, T>();

  put(key: string, value: T | null): void {
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
  }

  async sync(): Promise<void> {}

  async close(): Promise<void> {}
}
