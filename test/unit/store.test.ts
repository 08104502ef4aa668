import * as fs from "node:fs";
import * as path from "node:path";
import { JournalStore } from "../localhub/store/journal";
import { FailingDisk } from "../helpers/failing-disk";
import { StorageFailure, writesSettled } from "../localhub/store/store";
import { tempDir } from "../helpers/hub";

async function reopened<T>(dir: string): Promise<Record<string, T>> {
  const store = await JournalStore.open<T>(dir);
  const entries = Object.fromEntries(store.entries);
  await store.close();
  return entries;
}

describe("JournalStore", () => {
  it("gives back after reopening what was synced, including deletions", async () => {
    const dir = tempDir("store-");
    const store = await JournalStore.open<{ n: number }>(dir);
    store.put("a", { n: 1 });
    store.put("b", { n: 2 });
    store.put("a", { n: 3 });
    store.put("b", null);
    await store.sync();
    await store.close();
    expect(await reopened(dir)).toEqual({ a: { n: 3 } });
  });

  it("drops a record torn by a kill in the middle of its write, and keeps the ones before it", async () => {
    const dir = tempDir("store-");
    const store = await JournalStore.open<{ n: number }>(dir);
    store.put("kept", { n: 1 });
    await store.sync();
    await store.close();
    fs.appendFileSync(path.join(dir, "journal.ndjson"), '{"k":"torn","v":{"n"');
    const again = await JournalStore.open<{ n: number }>(dir);
    expect(Object.fromEntries(again.entries)).toEqual({ kept: { n: 1 } });
    // The torn tail is gone for good: new records after it are readable on the next start.
    again.put("later", { n: 2 });
    await again.sync();
    await again.close();
    expect(await reopened(dir)).toEqual({ kept: { n: 1 }, later: { n: 2 } });
  });

  it("shares one disk flush among writes made together", async () => {
    const disk = new FailingDisk();
    const store = await JournalStore.open<number>(tempDir("store-"), { io: disk });
    const before = disk.datasyncs;
    for (let i = 0; i < 100; i++) store.put(`k${i}`, i);
    await store.sync();
    expect(disk.datasyncs - before).toBe(1);
    await store.close();
  });

  it("refuses a write the full disk could not take with StorageFailure, and logs it once", async () => {
    const disk = new FailingDisk();
    const lines: string[] = [];
    const store = await JournalStore.open<number>(tempDir("store-"), { io: disk, log: (line) => lines.push(line) });
    disk.full = true;
    store.put("a", 1);
    const failure = await store.sync().catch((err) => err);
    expect(failure).toBeInstanceOf(StorageFailure);
    expect(failure.code).toBe("ENOSPC");
    store.put("b", 2);
    await expect(store.sync()).rejects.toThrow(/disk is full/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/storage failure during journal write: the disk is full/);
    await store.close();
  });

  it("writes the refused changes once space returns, and keeps every record readable after a restart", async () => {
    const dir = tempDir("store-");
    const disk = new FailingDisk();
    const lines: string[] = [];
    const store = await JournalStore.open<number>(dir, { io: disk, log: (line) => lines.push(line) });
    store.put("before", 0);
    await store.sync();
    disk.full = true;
    store.put("refused", 1);
    await expect(store.sync()).rejects.toBeInstanceOf(StorageFailure);
    disk.full = false;
    store.put("after", 2);
    await store.sync();
    expect(lines[1]).toMatch(/recovered/);
    await store.close();
    // Memory and disk agree again: the half-written line of the failed append did not hide what came after it.
    expect(await reopened(dir)).toEqual({ before: 0, refused: 1, after: 2 });
  });

  it("reports an I/O error of the flush as StorageFailure EIO", async () => {
    const disk = new FailingDisk();
    const store = await JournalStore.open<number>(tempDir("store-"), { io: disk });
    disk.ioError = true;
    store.put("a", 1);
    await expect(store.sync()).rejects.toMatchObject({ name: "StorageFailure", code: "EIO" });
    disk.ioError = false;
    await store.sync();
    await store.close();
  });

  it("keeps the previous snapshot and journal when a compaction fails, without an unhandled rejection", async () => {
    const dir = tempDir("store-");
    const disk = new FailingDisk();
    const lines: string[] = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const store = await JournalStore.open<string>(dir, {
        io: disk,
        log: (line) => lines.push(line),
        compactAfterBytes: 1000,
      });
      store.put("old", "snapshot");
      await store.close();
      const again = await JournalStore.open<string>(dir, {
        io: disk,
        log: (line) => lines.push(line),
        compactAfterBytes: 1000,
      });
      const snapshot = fs.readFileSync(path.join(dir, "snapshot.json"), "utf8");
      disk.snapshotFails = true;
      for (let i = 0; i < 20; i++) again.put(`k${i}`, "x".repeat(100));
      await again.sync(); // the records themselves are durable: only the compaction after them failed
      await again.close();
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(lines).toEqual([expect.stringMatching(/storage failure during compaction.*previous snapshot/)]);
      expect(fs.readFileSync(path.join(dir, "snapshot.json"), "utf8")).toBe(snapshot);
      expect(fs.existsSync(path.join(dir, "snapshot.json.tmp"))).toBe(false);
      expect(fs.statSync(path.join(dir, "journal.ndjson")).size).toBeGreaterThan(2000);
      const entries = await reopened<string>(dir);
      expect(entries.old).toBe("snapshot");
      expect(Object.keys(entries)).toHaveLength(21);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("compacts the journal into the snapshot once it is large", async () => {
    const dir = tempDir("store-");
    const store = await JournalStore.open<string>(dir, { compactAfterBytes: 1000 });
    for (let i = 0; i < 20; i++) store.put(`k${i}`, "x".repeat(100));
    await store.sync();
    await store.close();
    expect(fs.statSync(path.join(dir, "journal.ndjson")).size).toBe(0);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, "snapshot.json"), "utf8")))).toHaveLength(20);
  });
});

describe("JournalStore while the disk is full", () => {
  it("lets reads wait for writes in flight without failing, and fails only the writers", async () => {
    const disk = new FailingDisk();
    const store = await JournalStore.open<number>(tempDir("store-"), { io: disk });
    disk.full = true;
    store.put("a", 1);
    const write = store.sync();
    const read = writesSettled(store);
    await expect(write).rejects.toBeInstanceOf(StorageFailure);
    await expect(read).resolves.toBeUndefined();
    expect(store.entries.get("a")).toBe(1); // memory keeps the change; the disk gets it once it has room
    await store.close();
  });
});
