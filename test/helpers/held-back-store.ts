/** A store for tests of the order "durable, then announced": writes stay in memory and sync() waits for release(). */
import type { Store, StoredRecord } from "../localhub";

/** A store in memory whose sync() can be held back, like a disk that takes its time. */
export class HeldBackStore implements Store<StoredRecord> {
  readonly entries = new Map<string, StoredRecord>();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  put(key: string, value: StoredRecord | null): void {
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
  }
  sync(): Promise<void> {
    return this.gate ?? Promise.resolve();
  }
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.gate = undefined;
    this.open?.();
  }
  async close(): Promise<void> {}
}
