/**
 * Durable key-value state for the hub: an append-only journal of whole records plus a snapshot, compacted by
 * atomic rename. Writers call put() and then await sync(): puts made in the same moment share one fdatasync
 * (group commit), so nothing is acknowledged before it is on disk and a kill -9 loses nothing acknowledged.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export interface Store<T> {
  /** Everything stored, as it was when the hub last stopped (or was killed). */
  readonly entries: ReadonlyMap<string, T>;
  /** Records a whole value for a key (null removes it); it is durable once a later sync() resolves. */
  put(key: string, value: T | null): void;
  /** Resolves when every put so far is on disk. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Keeps nothing across restarts (`--in-memory`). */
export class MemoryStore<T> implements Store<T> {
  readonly entries = new Map<string, T>();
  put(key: string, value: T | null): void {
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Batch {
  lines: string[];
  done: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

const COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

export class JournalStore<T> implements Store<T> {
  readonly entries = new Map<string, T>();
  private readonly snapshotFile: string;
  private readonly journalFile: string;
  private journal!: fs.promises.FileHandle;
  private journalBytes = 0;
  private collecting: Batch | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;

  private constructor(dir: string) {
    this.snapshotFile = path.join(dir, "snapshot.json");
    this.journalFile = path.join(dir, "journal.ndjson");
  }

  static async open<T>(dir: string): Promise<JournalStore<T>> {
    fs.mkdirSync(dir, { recursive: true });
    const store = new JournalStore<T>(dir);
    store.load();
    // Start each run from a fresh snapshot: replay cost stays bounded and a torn last line is gone for good.
    store.compact();
    store.journal = await fs.promises.open(store.journalFile, "a");
    return store;
  }

  private load(): void {
    if (fs.existsSync(this.snapshotFile)) {
      const snapshot = JSON.parse(fs.readFileSync(this.snapshotFile, "utf8")) as Record<string, T>;
      for (const [key, value] of Object.entries(snapshot)) this.entries.set(key, value);
    }
    if (!fs.existsSync(this.journalFile)) return;
    for (const line of fs.readFileSync(this.journalFile, "utf8").split("\n")) {
      if (!line) continue;
      let record: { k: string; v: T | null };
      try {
        record = JSON.parse(line);
      } catch {
        break; // a line torn by a kill during its write was never acknowledged: it and anything after it are dropped
      }
      if (record.v === null) this.entries.delete(record.k);
      else this.entries.set(record.k, record.v);
    }
  }

  /** Writes all entries to a new snapshot, swaps it in atomically, then empties the journal. */
  private compact(): void {
    const tmp = `${this.snapshotFile}.tmp`;
    const fd = fs.openSync(tmp, "w");
    fs.writeSync(fd, JSON.stringify(Object.fromEntries(this.entries)));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.snapshotFile);
    syncDirectory(path.dirname(this.snapshotFile));
    // A crash right here replays the old journal over the new snapshot: harmless, records are whole values.
    fs.closeSync(fs.openSync(this.journalFile, "w"));
    this.journalBytes = 0;
  }

  put(key: string, value: T | null): void {
    if (this.closed) throw new Error("store is closed");
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
    if (!this.collecting) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      done.catch(() => {}); // the error reaches whoever awaits sync()
      this.collecting = { lines: [], done, resolve, reject };
      setImmediate(() => this.writeNext());
    }
    this.collecting.lines.push(JSON.stringify({ k: key, v: value }) + "\n");
  }

  sync(): Promise<void> {
    return this.collecting?.done ?? this.inFlight ?? Promise.resolve();
  }

  private writeNext(): void {
    if (this.inFlight || !this.collecting) return;
    const batch = this.collecting;
    this.collecting = null;
    const data = batch.lines.join("");
    this.inFlight = batch.done;
    (async () => {
      await this.journal.write(data);
      await this.journal.datasync();
      this.journalBytes += Buffer.byteLength(data);
    })()
      .then(batch.resolve, batch.reject)
      .finally(async () => {
        if (this.journalBytes > COMPACT_AFTER_BYTES && !this.closed) {
          await this.journal.close();
          this.compact();
          this.journal = await fs.promises.open(this.journalFile, "a");
        }
        this.inFlight = null;
        this.writeNext();
      });
  }

  async close(): Promise<void> {
    await this.sync();
    while (this.inFlight) await this.inFlight.catch(() => {});
    this.closed = true;
    await this.journal.close();
  }
}

function syncDirectory(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
}
