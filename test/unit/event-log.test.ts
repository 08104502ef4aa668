import * as fs from "node:fs";
import * as path from "node:path";
import { EventInput, EventLog, LoggedEvent, partitionOf } from "../localhub/store/event-log";
import { tempDir } from "../helpers/hub";

const event = (text: string, extra: Partial<EventInput> = {}): EventInput => ({
  body: Buffer.from(text),
  properties: { n: text },
  messageProperties: { message_id: `id-${text}` },
  annotations: { "iothub-connection-device-id": "dev1" },
  ...extra,
});

/** A key that lands in partition 0 of a 2-partition log. */
const KEY = ["dev1", "dev2", "dev3", "dev4"].find((key) => partitionOf(key, 2) === 0)!;

describe("EventLog", () => {
  it("numbers events from 0 and gives byte offsets that grow by each record's size", async () => {
    const log = EventLog.open(tempDir("log-"));
    const first = await log.append(KEY, event("a"));
    const second = await log.append(KEY, event("bb"));
    expect([first.partition, first.sequenceNumber, first.offset]).toEqual([0, 0, 0]);
    expect(second.sequenceNumber).toBe(1);
    expect(second.offset).toBeGreaterThan(first.offset);
    expect(log.partitions[0].info()).toMatchObject({
      beginSequenceNumber: 0,
      lastSequenceNumber: 1,
      lastOffset: second.offset,
      isEmpty: false,
    });
    await log.close();
  });

  it("gives back after reopening every acknowledged event, body and properties included", async () => {
    const dir = tempDir("log-");
    const log = EventLog.open(dir);
    await Promise.all(["a", "b", "c"].map((text) => log.append(KEY, event(text))));
    await log.close();
    const reopened = EventLog.open(dir);
    const partition = reopened.partitions[0];
    expect([0, 1, 2].map((n) => partition.event(n)?.body.toString())).toEqual(["a", "b", "c"]);
    expect(partition.event(2)).toMatchObject({
      properties: { n: "c" },
      messageProperties: { message_id: "id-c" },
      annotations: { "iothub-connection-device-id": "dev1" },
    });
    // New events continue the numbering.
    expect((await reopened.append(KEY, event("d"))).sequenceNumber).toBe(3);
    await reopened.close();
  });

  it("drops a record torn by a kill during its write, and keeps the ones before it", async () => {
    const dir = tempDir("log-");
    const log = EventLog.open(dir);
    await log.append(KEY, event("kept"));
    await log.close();
    const segmentDir = path.join(dir, "partition-0");
    const file = path.join(segmentDir, fs.readdirSync(segmentDir)[0]);
    fs.appendFileSync(file, Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    const reopened = EventLog.open(dir);
    expect(reopened.partitions[0].info().lastSequenceNumber).toBe(0);
    await reopened.append(KEY, event("after"));
    await reopened.close();
    const third = EventLog.open(dir);
    expect([0, 1].map((n) => third.partitions[0].event(n)?.body.toString())).toEqual(["kept", "after"]);
    await third.close();
  });

  it("finds where a reader starts by offset, sequence number and enqueued time", async () => {
    let clock = 1_000;
    const log = EventLog.open(tempDir("log-"), { now: () => clock });
    const stored: LoggedEvent[] = [];
    for (const text of ["a", "b", "c"]) {
      stored.push(await log.append(KEY, event(text)));
      clock += 10;
    }
    const partition = log.partitions[0];
    expect(partition.firstAfter((e) => e.offset > stored[0].offset)).toBe(1);
    expect(partition.firstAfter((e) => e.offset >= stored[1].offset)).toBe(1);
    expect(partition.firstAfter((e) => e.time > 1_010)).toBe(2);
    expect(partition.firstAfter((e) => e.sequenceNumber > 2)).toBe(3);
    await log.close();
  });

  it("forgets whole segments older than the retention period, keeping sequence numbers", async () => {
    let clock = 0;
    const log = EventLog.open(tempDir("log-"), { now: () => clock, retentionMs: 1_000, segmentBytes: 1 });
    await log.append(KEY, event("old"));
    clock = 5_000;
    await log.append(KEY, event("new"));
    await log.append(KEY, event("newer"));
    log.partitions[0].sweep();
    const info = log.partitions[0].info();
    expect(info.beginSequenceNumber).toBeGreaterThan(0);
    expect(info.lastSequenceNumber).toBe(2);
    expect(log.partitions[0].event(0)).toBeUndefined();
    expect(log.partitions[0].event(2)?.body.toString()).toBe("newer");
    await log.close();
  });

  it("drops the oldest segments beyond the size limit", async () => {
    const log = EventLog.open(tempDir("log-"), { maxBytesPerPartition: 300, segmentBytes: 100 });
    for (let i = 0; i < 20; i++) await log.append(KEY, event("x".repeat(50)));
    const info = log.partitions[0].info();
    expect(info.lastSequenceNumber).toBe(19);
    expect(info.beginSequenceNumber).toBeGreaterThan(10);
    await log.close();
  });

  it("refuses to reopen a log with another partition count, naming the fix", async () => {
    const dir = tempDir("log-");
    await EventLog.open(dir, { partitions: 2 }).close();
    expect(() => EventLog.open(dir, { partitions: 4 })).toThrow(/has 2 partitions, not 4/);
  });

  it("shares one flush among events appended together, and announces them only once durable", async () => {
    const log = EventLog.open(tempDir("log-"));
    const announced: number[] = [];
    log.on("appended", (partition: number) => announced.push(log.partitions[partition].info().lastSequenceNumber));
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(KEY, event(String(i)))));
    expect(announced).toEqual([99]);
    await log.close();
  });
});
