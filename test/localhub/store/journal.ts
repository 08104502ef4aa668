/**
 * Durable key-value state for the hub: an append-only journal of whole records plus a snapshot, compacted by atomic
 * rename. Puts made in the same moment share one fdatasync (group commit); a full or failing disk fails sync().
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { StorageFailure, Store } from "./store";

/** One line of the journal: a key and its whole new value, or null for a removal. */
interface JournalRecord<T> {
  k: string;
  v: T | null;
}

/** The journal file as the store uses it: appends, flushes, and cuts back a write that failed half way. */
export interface JournalFile {
  append(data: string): Promise<void>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Every file operation that writes. A seam, so that tests can make the disk fill up or fail on demand without
 * mocking anything the hub's clients see.
 */
export interface JournalIo {
  openAppend(file: string): Promise<JournalFile>;
  /** Creates or overwrites `file` with `data` and flushes it to disk. */
  writeDurably(file: string, data: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(file: string): Promise<void>;
  /** Makes a rename in `dir` durable; platforms that cannot fsync a directory skip it (the rename is atomic). */
  syncDirectory(dir: string): Promise<void>;
}

export const diskIo: JournalIo = {
  async openAppend(file) {
    const handle = await fs.promises.open(file, "a");
    return {
      append: (data) => handle.appendFile(data),
      datasync: () => handle.datasync(),
      truncate: (length) => handle.truncate(length),
      size: async () => (await handle.stat()).size,
      close: () => handle.close(),
    };
  },
  async writeDurably(file, data) {
    const handle = await fs.promises.open(file, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => fs.promises.rename(from, to),
  remove: (file) => fs.promises.rm(file, { force: true }),
  async syncDirectory(dir) {
    try {
      const handle = await fs.promises.open(dir, "r");
      await handle.sync().finally(() => handle.close());
    } catch {
      // Not every platform can fsync a directory; the rename itself is still atomic.
    }
  },
};

export interface JournalOptions {
  io?: JournalIo;
  /** Gets one line when the disk starts failing and one when it works again; default none. */
  log?: (line: string) => void;
  /** Journal size that triggers a compaction into the snapshot. */
  compactAfterBytes?: number;
}

interface Waiter {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function waiter(): Waiter {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // the failure reaches whoever awaits sync(); nobody awaiting is not a crash
  return { promise, resolve, reject };
}

const COMPACT_AFTER_BYTES = 16 * 1024 * 1024;

export class JournalStore<T> implements Store<T> {
  readonly entries = new Map<string, T>();
  private readonly snapshotFile: string;
  private readonly journalFile: string;
  private readonly io: JournalIo;
  private readonly log: (line: string) => void;
  private readonly compactAfterBytes: number;
  private journal!: JournalFile;
  /** Bytes of whole, flushed records in the journal: where a failed append is cut back to. */
  private journalBytes = 0;
  private compactAt: number;
  /** Lines not yet on disk, one per key (records are whole values, so the newest line of a key is enough). */
  private pending = new Map<string, string>();
  private waiting: Waiter | null = null;
  private writing: Waiter | null = null;
  private running: Promise<void> | null = null;
  /** A failed append may have left part of its data: cut the journal back before the next one. */
  private tornTail = false;
  private failing = false;
  private closed = false;

  private constructor(dir: string, options: JournalOptions) {
    this.snapshotFile = path.join(dir, "snapshot.json");
    this.journalFile = path.join(dir, "journal.ndjson");
    this.io = options.io ?? diskIo;
    this.log = options.log ?? (() => {});
    this.compactAfterBytes = options.compactAfterBytes ?? COMPACT_AFTER_BYTES;
    this.compactAt = this.compactAfterBytes;
  }

  static async open<T>(dir: string, options: JournalOptions = {}): Promise<JournalStore<T>> {
    fs.mkdirSync(dir, { recursive: true });
    const store = new JournalStore<T>(dir, options);
    const goodBytes = store.load();
    try {
      store.journal = await store.io.openAppend(store.journalFile);
      // A record torn by a kill was never acknowledged: cut it off, or records appended after it would be lost.
      if ((await store.journal.size()) > goodBytes) {
        await store.journal.truncate(goodBytes);
        await store.journal.datasync();
      }
    } catch (err) {
      throw new StorageFailure("open", err);
    }
    store.journalBytes = goodBytes;
    // Start each run from a fresh snapshot, so that replay cost stays bounded; a full disk only postpones it.
    await store.compactQuietly();
    return store;
  }

  /** Reads the snapshot and replays the journal; returns the length of the journal's intact part. */
  private load(): number {
    if (fs.existsSync(this.snapshotFile)) {
      const snapshot = JSON.parse(fs.readFileSync(this.snapshotFile, "utf8")) as Record<string, T>;
      for (const [key, value] of Object.entries(snapshot)) this.entries.set(key, value);
    }
    if (!fs.existsSync(this.journalFile)) return 0;
    const journal = fs.readFileSync(this.journalFile);
    let offset = 0;
    while (offset < journal.length) {
      const end = journal.indexOf(0x0a, offset);
      if (end < 0) break; // no newline: the write of this record never completed
      let record: JournalRecord<T>;
      try {
        record = JSON.parse(journal.toString("utf8", offset, end)) as JournalRecord<T>;
      } catch {
        break; // torn by a kill during its write: it and anything after it were never acknowledged
      }
      if (record.v === null) this.entries.delete(record.k);
      else this.entries.set(record.k, record.v);
      offset = end + 1;
    }
    return offset;
  }

  put(key: string, value: T | null): void {
    if (this.closed) throw new Error("store is closed");
    if (value === null) this.entries.delete(key);
    else this.entries.set(key, value);
    const record: JournalRecord<T> = { k: key, v: value };
    this.pending.set(key, JSON.stringify(record) + "\n");
    this.schedule();
  }

  sync(): Promise<void> {
    // Lines kept from a failed write are tried again: sync() means every put so far.
    if (this.pending.size) this.schedule();
    return this.waiting?.promise ?? this.writing?.promise ?? Promise.resolve();
  }

  private schedule(): void {
    if (this.waiting) return;
    this.waiting = waiter();
    setImmediate(() => this.writeNext());
  }

  private writeNext(): void {
    if (this.running || !this.waiting) return;
    const batch = this.pending;
    this.pending = new Map();
    this.writing = this.waiting;
    this.waiting = null;
    this.running = this.write(batch, this.writing).finally(() => {
      this.running = null;
      this.writing = null;
      this.writeNext();
    });
  }

  /** Appends one batch and flushes it; never rejects (the batch's waiter carries the outcome). */
  private async write(batch: Map<string, string>, done: Waiter): Promise<void> {
    const data = [...batch.values()].join("");
    try {
      if (this.tornTail) {
        await this.journal.truncate(this.journalBytes);
        this.tornTail = false;
      }
      this.tornTail = true;
      await this.journal.append(data);
      await this.journal.datasync();
      this.tornTail = false;
    } catch (err) {
      // Keep the lines for the next write; a newer put of the same key has a newer line and wins.
      for (const [key, line] of batch) if (!this.pending.has(key)) this.pending.set(key, line);
      const failure = new StorageFailure("journal write", err);
      if (!this.failing) this.log(`${failure.message}; changes are refused until the disk accepts writes again`);
      this.failing = true;
      done.reject(failure);
      return;
    }
    this.journalBytes += Buffer.byteLength(data);
    if (this.failing) this.log("storage recovered: the disk accepts writes again");
    this.failing = false;
    done.resolve();
    if (this.journalBytes >= this.compactAt && !this.closed) await this.compactQuietly();
  }

  /** A compaction that fails leaves the previous snapshot and journal as they were, and is tried again later. */
  private async compactQuietly(): Promise<void> {
    try {
      await this.compact();
      this.compactAt = this.compactAfterBytes;
    } catch (err) {
      const failure = err instanceof StorageFailure ? err : new StorageFailure("compaction", err);
      this.log(`${failure.message}; the previous snapshot and journal are kept`);
      this.compactAt = this.journalBytes + Math.ceil(this.compactAfterBytes / 4);
    }
  }

  /** Writes all entries to a new snapshot, swaps it in atomically, then empties the journal. */
  private async compact(): Promise<void> {
    const tmp = `${this.snapshotFile}.tmp`;
    try {
      await this.io.writeDurably(tmp, JSON.stringify(Object.fromEntries(this.entries)));
      await this.io.rename(tmp, this.snapshotFile);
    } catch (err) {
      await this.io.remove(tmp).catch(() => {});
      throw new StorageFailure("compaction", err);
    }
    await this.io.syncDirectory(path.dirname(this.snapshotFile));
    // The snapshot holds every record of the journal: if emptying it fails, replaying it later is harmless.
    try {
      await this.journal.truncate(0);
      await this.journal.datasync();
      this.journalBytes = 0;
      this.tornTail = false;
    } catch {
      this.tornTail = true;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pending.size) this.schedule();
    while (this.running || this.waiting) {
      this.writeNext();
      await this.running;
    }
    await this.journal.close().catch(() => {});
  }
}
