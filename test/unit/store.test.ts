import * as fs from "node:fs";
import * as path from "node:path";
import { JournalStore } from "../localhub/store/journal";
import { tempDir } from "../helpers/hub";

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
    const reopened = await JournalStore.open<{ n: number }>(dir);
    expect([...reopened.entries]).toEqual([["a", { n: 3 }]]);
    await reopened.close();
  });

  it("drops a record torn by a kill in the middle of its write, and keeps the ones before it", async () => {
    const dir = tempDir("store-");
    const store = await JournalStore.open<{ n: number }>(dir);
    store.put("kept", { n: 1 });
    await store.sync();
    await store.close();
    fs.appendFileSync(path.join(dir, "journal.ndjson"), '{"k":"torn","v":{"n"');
    const reopened = await JournalStore.open<{ n: number }>(dir);
    expect(Object.fromEntries(reopened.entries)).toEqual({ kept: { n: 1 } });
    // The torn tail is gone for good: new records after it are readable on the next start.
    reopened.put("later", { n: 2 });
    await reopened.sync();
    await reopened.close();
    const third = await JournalStore.open<{ n: number }>(dir);
    expect(Object.fromEntries(third.entries)).toEqual({ kept: { n: 1 }, later: { n: 2 } });
    await third.close();
  });

  it("shares one disk flush among writes made together", async () => {
    const dir = tempDir("store-");
    const store = await JournalStore.open<number>(dir);
    const datasync = jest.spyOn((store as any).journal, "datasync");
    for (let i = 0; i < 100; i++) store.put(`k${i}`, i);
    await store.sync();
    expect(datasync).toHaveBeenCalledTimes(1);
    await store.close();
  });
});
