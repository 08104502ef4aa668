/**
 * A cloud-to-device message is refused at send when the device could not receive it: more than 64 KB counted as IoT
 * Hub counts it (body and properties), properties that would not fit an MQTT topic, an expiry that is not a date.
 * Nothing of it is queued, and the device still gets the good messages sent after it; a message an older journal
 * holds that no device could receive is dead-lettered at start instead of wedging its device.
 */
import * as path from "node:path";
import { Client as ServiceClient } from "azure-iothub";
import { Message } from "azure-iot-device";
import { type CloudToDeviceMessage, JournalStore } from "../localhub";
import { eventually, moduleConnectionString, tempDir } from "../helpers/hub";
import { completingDevice, message } from "../helpers/messages";
import { ProtocolHub, createDevice, startProtocolHub } from "../helpers/raw";
import { expectSdkClientsServed, redirectSdks } from "../helpers/sdk-probe";

/** Clients first, then their hub: a service client whose hub goes away mid-close overflows the SDK's stack. */
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
});

async function start(dataDir?: string): Promise<ProtocolHub> {
  const hub = await startProtocolHub(dataDir ? { dataDir, inMemory: false } : {});
  redirectSdks(hub.hub);
  closers.push(() => hub.hub.stop());
  return hub;
}

/** The probe device over the SDK's MQTT transport, collecting (and completing) what it receives. */
async function openProbe(hub: ProtocolHub): Promise<Message[]> {
  const { client, received } = completingDevice(moduleConnectionString(hub.hub, "probe"));
  closers.unshift(() => client.close());
  await client.open();
  return received;
}

/** Another device and the registry, while the probe stays connected (one connection per identity). */
async function expectOthersServed(hub: ProtocolHub): Promise<void> {
  await createDevice(hub.hub, "bystander");
  await expectSdkClientsServed(hub.hub, "bystander");
}

function service(hub: ProtocolHub): ServiceClient {
  const client = ServiceClient.fromConnectionString(hub.hub.connectionString);
  closers.unshift(() => client.close());
  return client;
}

describe("refused at send, never queued, and the device keeps receiving", () => {
  it.each([
    ["70 KB of application properties", message("small", {}, { big: "p".repeat(70_000) }), "MessageTooLargeError"],
    ["a 70,000-character message id", message("small", { messageId: "m".repeat(70_000) }), "MessageTooLargeError"],
    // 40 KB as IoT Hub counts it, but 120 KB once URL-encoded into the topic a device receives it on.
    ["properties past an MQTT topic", message("small", {}, { wide: "é".repeat(20_000) }), "MessageTooLargeError"],
    ["an expiry of 2^62 ms", message("small", { expiryTimeUtc: 2 ** 62 }), "ArgumentError"],
  ])("%s", async (_what, bad, errorName) => {
    const hub = await start();
    const received = await openProbe(hub);
    const client = service(hub);
    await client.open();
    const err = await client.send("probe", bad).catch((e: unknown) => e);
    expect((err as Error)?.name).toBe(errorName);
    expect(hub.hub.core.cloudToDevice.pendingFor("probe")).toHaveLength(0);
    await client.send("probe", message("after", { messageId: "good" }));
    await eventually(() => received.length === 1, "the good message");
    expect(received[0].messageId).toBe("good");
    expect(received[0].data.toString()).toBe("after");
    await expectOthersServed(hub);
  });

  it("a message of 64 KB with its properties is still delivered", async () => {
    const hub = await start();
    const received = await openProbe(hub);
    const client = service(hub);
    await client.open();
    // The body and property name and value make 64 KB less the `to` system property and a little room.
    await client.send("probe", message("b".repeat(32 * 1024), {}, { k: "v".repeat(30 * 1024) }));
    await eventually(() => received.length === 1, "the 64 KB message");
    expect(received[0].data.length).toBe(32 * 1024);
  });
});

it("messages an older journal holds that no device could receive are dead-lettered, and the rest delivered", async () => {
  const dataDir = tempDir("c2d-journal-");
  const first = await start(dataDir);
  await first.hub.stop();
  // What a hub before these checks could have queued: an id too long for any MQTT topic, an expiry that was NaN
  // (a journal of JSON keeps it as null), then a good message behind them.
  const store = await JournalStore.open<CloudToDeviceMessage>(path.join(dataDir, "c2d"));
  const base = { kind: "c2d", deviceId: "probe", ack: "none", properties: {}, deliveryCount: 0 } as const;
  const now = Date.now();
  const timing = { enqueuedTimeMs: now, expiryTimeMs: now + 3600_000 };
  const records: CloudToDeviceMessage[] = [
    { ...base, ...timing, lockToken: "a", sequence: 1, messageId: "m".repeat(70_000), body: "" },
    { ...base, ...timing, lockToken: "b", sequence: 2, messageId: "nan", body: "", expiryTimeMs: null as never },
    { ...base, ...timing, lockToken: "c", sequence: 3, messageId: "good", body: Buffer.from("ok").toString("base64") },
  ];
  for (const record of records) store.put(`c2d:${record.lockToken}`, record);
  await store.sync();
  await store.close();

  const hub = await start(dataDir);
  expect(hub.log.filter((line) => /dead-lettered/.test(line))).toHaveLength(2);
  const received = await openProbe(hub);
  await eventually(() => received.length === 1, "the good message behind the bad ones");
  expect(received[0].messageId).toBe("good");
  await expectOthersServed(hub);
});
