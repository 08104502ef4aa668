/**
 * What the hub's core needs from its state: whole values by key, durable once sync() resolves. The interface lives
 * apart from its implementations so that the core depends on the promise, not on files (memory.ts, journal.ts).
 */

export interface Store<T> {
  /** Everything stored, as it was when the hub last stopped (or was killed), plus every put since. */
  readonly entries: ReadonlyMap<string, T>;
  /** Records a whole value for a key (null removes it); it is durable once a later sync() resolves. */
  put(key: string, value: T | null): void;
  /**
   * Resolves when every put so far is on disk; rejects with StorageFailure when one of them could not be made
   * durable (disk full, I/O error). The store keeps such puts and writes them again with the next batch, so memory
   * and disk agree again as soon as the disk does.
   */
  sync(): Promise<void>;
  /** Writes what it can and closes; never rejects (a put that was not synced was never acknowledged). */
  close(): Promise<void>;
}

/**
 * A change that could not be made durable. The edges answer it as the real hub answers a transient failure
 * (REST 503 ServiceUnavailable, MQTT twin error 503001) and the client may retry; reads keep being served.
 */
export class StorageFailure extends Error {
  /** The operating system's code, e.g. ENOSPC or EIO, when there is one. */
  readonly code: string;

  constructor(
    readonly operation: "journal write" | "compaction" | "open",
    readonly cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? "EUNKNOWN";
    const detail = code === "ENOSPC" ? "the disk is full" : code === "EIO" ? "the disk reported an I/O error" : code;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`storage failure during ${operation}: ${detail} (${reason})`);
    this.name = "StorageFailure";
    this.code = code;
  }
}

/**
 * For reads: resolves (never rejects) once every put so far was written or failed. A read then shows nothing that a
 * crash could still take back, and is still served while the disk refuses writes (the writers got the failure).
 */
export function writesSettled(store: Store<unknown>): Promise<void> {
  return store.sync().then(
    () => {},
    () => {},
  );
}
