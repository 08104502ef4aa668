import {
  CloudToDeviceQueue,
  CloudToDeviceRecord,
  LOCK_TIMEOUT_MS,
  MAX_DELIVERY_COUNT,
  MAX_MESSAGES_PER_DEVICE,
} from "../localhub/core/cloud-to-device";
import { deviceboundTopic } from "../localhub/edges/mqtt/cloud-to-device";
import { JournalStore } from "../localhub/store/journal";
import { MemoryStore } from "../localhub/store/memory";
import { tempDir } from "../helpers/hub";

const devices = { find: (id: string) => (id.startsWith("dev") ? { generationId: `gen-${id}` } : undefined) };
const body = (text: string) => Buffer.from(text);

describe("CloudToDeviceQueue", () => {
  it("delivers a device's messages oldest first and forgets one once completed", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    const queued: string[] = [];
    queue.on("queued", (id: string) => queued.push(id));
    const first = await queue.enqueue("dev1", { body: body("one"), messageId: "m1" });
    await queue.enqueue("dev1", { body: body("two"), messageId: "m2" });
    expect(queued).toEqual(["dev1", "dev1"]);
    expect(queue.pendingFor("dev1").map((m) => m.messageId)).toEqual(["m1", "m2"]);
    expect(queue.nextFor("dev1", first.lockToken)?.messageId).toBe("m2");
    expect(await queue.complete("dev1", first.lockToken)).toBe(true);
    expect(queue.pendingFor("dev1").map((m) => m.messageId)).toEqual(["m2"]);
    expect(await queue.complete("dev1", first.lockToken)).toBe(false);
  });

  it("refuses a message for a device that does not exist", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    await expect(queue.enqueue("nobody", { body: body("x") })).rejects.toMatchObject({ code: "DeviceNotFound" });
  });

  it(`refuses the message after ${MAX_MESSAGES_PER_DEVICE} queued for one device`, async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    for (let i = 0; i < MAX_MESSAGES_PER_DEVICE; i++) await queue.enqueue("dev1", { body: body(String(i)) });
    await expect(queue.enqueue("dev1", { body: body("one too many") })).rejects.toMatchObject({
      code: "DeviceMaximumQueueDepthExceeded",
    });
    await queue.enqueue("dev2", { body: body("other devices are not affected") });
  });

  it("keeps queued messages and unread feedback across a restart", async () => {
    const dir = tempDir("c2d-");
    const store = await JournalStore.open<CloudToDeviceRecord>(dir);
    const queue = new CloudToDeviceQueue(store, devices);
    const done = await queue.enqueue("dev1", { body: body("done"), messageId: "m1", ack: "full" });
    await queue.enqueue("dev1", { body: body("waiting"), messageId: "m2", properties: { a: "1" } });
    await queue.complete("dev1", done.lockToken);
    await store.close();
    const reopenedStore = await JournalStore.open<CloudToDeviceRecord>(dir);
    const reopened = new CloudToDeviceQueue(reopenedStore, devices);
    expect(reopened.pendingFor("dev1").map((m) => [m.messageId, Buffer.from(m.body, "base64").toString()])).toEqual([
      ["m2", "waiting"],
    ]);
    expect(reopened.takeFeedback()?.records).toEqual([
      expect.objectContaining({ originalMessageId: "m1", statusCode: "Success", deviceGenerationId: "gen-dev1" }),
    ]);
    reopened.close();
    await reopenedStore.close();
  });

  it("drops an expired message and reports it to a sender that asked for negative feedback", async () => {
    let clock = 1_000;
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices, undefined, () => clock);
    await queue.enqueue("dev1", { body: body("late"), messageId: "m1", ack: "negative", expiryTimeMs: 2_000 });
    await queue.enqueue("dev1", { body: body("quiet"), messageId: "m2", ack: "positive", expiryTimeMs: 2_000 });
    clock = 2_000;
    expect(queue.pendingFor("dev1")).toEqual([]);
    expect(queue.takeFeedback()?.records.map((r) => [r.originalMessageId, r.statusCode, r.description])).toEqual([
      ["m1", "Expired", "Message Expired"],
    ]);
    queue.close();
  });

  it("gives feedback only as the ack asks: positive on success, none for ack none", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    for (const ack of ["none", "positive", "negative", "full"]) {
      const message = await queue.enqueue("dev1", { body: body(ack), messageId: ack, ack });
      await queue.complete("dev1", message.lockToken);
    }
    expect(queue.takeFeedback()?.records.map((r) => r.originalMessageId)).toEqual(["positive", "full"]);
  });

  it("gives a released feedback batch out again, and an acknowledged one never", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    const message = await queue.enqueue("dev1", { body: body("x"), messageId: "m1", ack: "full" });
    await queue.complete("dev1", message.lockToken);
    const batch = queue.takeFeedback()!;
    expect(queue.takeFeedback()).toBeUndefined();
    queue.releaseFeedback(batch.batchId);
    const again = queue.takeFeedback()!;
    expect(again.records).toEqual(batch.records);
    await queue.acknowledgeFeedback(again.batchId);
    expect(queue.feedbackCount).toBe(0);
  });

  it("keeps sending a message MQTT never acknowledges: sends are not deliveries in IoT Hub's count", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    const message = await queue.enqueue("dev1", { body: body("x"), messageId: "m1", ack: "full" });
    for (let i = 0; i < MAX_DELIVERY_COUNT + 2; i++) expect(queue.delivering("dev1", message.lockToken)).toBe(true);
    expect(queue.attemptsOf(queue.pendingFor("dev1")[0])).toBe(MAX_DELIVERY_COUNT + 2);
    expect(queue.feedbackCount).toBe(0);
  });
});

describe("CloudToDeviceQueue settlement (HTTPS and AMQP receive)", () => {
  const fresh = (now?: () => number) =>
    new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices, undefined, now);

  it("locks the oldest message for a receive, hides it from the next receive and from MQTT", async () => {
    const queue = fresh();
    await queue.enqueue("dev1", { body: body("one"), messageId: "m1" });
    await queue.enqueue("dev1", { body: body("two"), messageId: "m2" });
    const first = (await queue.receive("dev1"))!;
    expect(first.message.messageId).toBe("m1");
    expect(first.lockToken).not.toBe(first.message.lockToken);
    expect(queue.delivering("dev1", first.message.lockToken)).toBe(false);
    const second = (await queue.receive("dev1"))!;
    expect(second.message.messageId).toBe("m2");
    expect(await queue.receive("dev1")).toBeUndefined();
    queue.close();
  });

  it("completes by lock token with Success feedback, and refuses the same token again", async () => {
    const queue = fresh();
    await queue.enqueue("dev1", { body: body("x"), messageId: "m1", ack: "full" });
    const { lockToken } = (await queue.receive("dev1"))!;
    expect(await queue.complete("dev1", lockToken)).toBe(true);
    expect(await queue.complete("dev1", lockToken)).toBe(false);
    expect(await queue.abandon("dev1", lockToken)).toBe(false);
    expect(queue.pendingFor("dev1")).toEqual([]);
    expect(queue.takeFeedback()?.records.map((r) => r.statusCode)).toEqual(["Success"]);
  });

  it("rejects into Rejected feedback and never delivers the message again", async () => {
    const queue = fresh();
    await queue.enqueue("dev1", { body: body("x"), messageId: "m1", ack: "negative" });
    const { lockToken } = (await queue.receive("dev1"))!;
    expect(await queue.reject("dev1", lockToken)).toBe(true);
    expect(await queue.receive("dev1")).toBeUndefined();
    expect(queue.takeFeedback()?.records.map((r) => [r.statusCode, r.description])).toEqual([
      ["Rejected", "Message rejected"],
    ]);
  });

  it("puts an abandoned message back first in line with its delivery count, and says it is queued", async () => {
    const queue = fresh();
    await queue.enqueue("dev1", { body: body("x"), messageId: "m1" });
    await queue.enqueue("dev1", { body: body("y"), messageId: "m2" });
    const queued: string[] = [];
    queue.on("queued", (id: string) => queued.push(id));
    const first = (await queue.receive("dev1"))!;
    expect(await queue.abandon("dev1", first.lockToken)).toBe(true);
    expect(queued).toEqual(["dev1"]);
    const again = (await queue.receive("dev1"))!;
    expect([again.message.messageId, again.message.deliveryCount]).toEqual(["m1", 1]);
    expect(again.lockToken).not.toBe(first.lockToken);
    expect(await queue.complete("dev1", first.lockToken)).toBe(false);
    queue.close();
  });

  it(`dead-letters a message at its ${MAX_DELIVERY_COUNT}th abandon with DeliveryCountExceeded`, async () => {
    const queue = fresh();
    await queue.enqueue("dev1", { body: body("x"), messageId: "m1", ack: "full" });
    for (let i = 1; i <= MAX_DELIVERY_COUNT; i++) {
      const { lockToken } = (await queue.receive("dev1"))!;
      expect(await queue.abandon("dev1", lockToken)).toBe(true);
    }
    expect(await queue.receive("dev1")).toBeUndefined();
    expect(queue.takeFeedback()?.records.map((r) => r.statusCode)).toEqual(["DeliveryCountExceeded"]);
  });

  it(`makes a message available again once its ${LOCK_TIMEOUT_MS / 1000} s lock expires, without counting a delivery`, async () => {
    let clock = 1_000_000;
    const queue = fresh(() => clock);
    await queue.enqueue("dev1", { body: body("x"), messageId: "m1" });
    const first = (await queue.receive("dev1"))!;
    expect(first.lockedUntilMs).toBe(clock + LOCK_TIMEOUT_MS);
    clock += LOCK_TIMEOUT_MS - 1;
    expect(await queue.receive("dev1")).toBeUndefined();
    clock += 1;
    expect(await queue.complete("dev1", first.lockToken)).toBe(false);
    const again = (await queue.receive("dev1"))!;
    expect([again.message.messageId, again.message.deliveryCount]).toEqual(["m1", 0]);
    queue.close();
  });

  it("keeps a lock, a delivery count and a completion across a restart", async () => {
    const dir = tempDir("c2d-lock-");
    const store = await JournalStore.open<CloudToDeviceRecord>(dir);
    const queue = new CloudToDeviceQueue(store, devices);
    await queue.enqueue("dev1", { body: body("kept"), messageId: "m1" });
    await queue.enqueue("dev1", { body: body("done"), messageId: "m2", ack: "positive" });
    const first = (await queue.receive("dev1"))!;
    await queue.abandon("dev1", first.lockToken);
    const locked = (await queue.receive("dev1"))!;
    await queue.complete("dev1", (await queue.receive("dev1"))!.lockToken);
    queue.close();
    await store.close();
    const reopenedStore = await JournalStore.open<CloudToDeviceRecord>(dir);
    const reopened = new CloudToDeviceQueue(reopenedStore, devices);
    expect(reopened.pendingFor("dev1").map((m) => [m.messageId, m.deliveryCount])).toEqual([["m1", 1]]);
    expect(await reopened.receive("dev1")).toBeUndefined();
    expect(await reopened.complete("dev1", locked.lockToken)).toBe(true);
    expect(reopened.takeFeedback()?.records.map((r) => r.originalMessageId)).toEqual(["m2"]);
    reopened.close();
    await reopenedStore.close();
  });
});

describe("deviceboundTopic", () => {
  it("writes the properties into the topic as IoT Hub does, URL-encoded", async () => {
    const queue = new CloudToDeviceQueue(new MemoryStore<CloudToDeviceRecord>(), devices);
    const message = await queue.enqueue("dev1", {
      body: body("x"),
      messageId: "m 1",
      correlationId: "c/1",
      ack: "full",
      properties: { "my key": "a&b" },
    });
    expect(deviceboundTopic(message)).toBe(
      "devices/dev1/messages/devicebound/%24.mid=m%201&%24.cid=c%2F1&%24.to=%2Fdevices%2Fdev1%2Fmessages%2FdeviceBound" +
        "&iothub-ack=full&my%20key=a%26b",
    );
  });
});
