/**
 * Twin versions count from 1, as on Azure: a new twin's desired and reported `$version` are 1, the first desired patch
 * is 2, the first reported patch answers 204 with `$version=2`. Facts from the recorded real-hub sessions in
 * Azure/azure-sdk-for-net `sdk/iot/Azure.IoT.Hub.Service/tests/SessionRecords/`: DevicesClientTests/
 * DevicesClient_DeviceTwinLifecycle.json and ModulesClientTests/ModulesClient_DeviceTwinLifecycle.json.
 */
import * as path from "node:path";
import * as mqtt from "mqtt-packet";
import { Registry } from "azure-iothub";
import { Client, ModuleClient, Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { type Hub, JournalStore, type StoredRecord } from "../localhub";
import { eventually, moduleConnectionString, startTestHub, tempDir } from "../helpers/hub";
import { connectAs, createDevice } from "../helpers/raw";

const NEVER = "0001-01-01T00:00:00Z";
let hub: Hub;
let registry: Registry;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(() => hub.stop());

const reportOver = (twin: Twin, patch: object) =>
  new Promise<void>((resolve, reject) =>
    twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())),
  );

it("a new device twin has desired and reported $version 1 and desired $metadata with only $lastUpdated", async () => {
  await registry.create({ deviceId: "v-dev" });
  const twin = (await registry.getTwin("v-dev")).responseBody as any;
  expect(twin.etag).toBe("AAAAAAAAAAE=");
  expect(twin.version).toBe(2);
  expect(twin.properties.desired).toEqual({ $metadata: { $lastUpdated: expect.any(String) }, $version: 1 });
  expect(twin.properties.reported).toEqual({ $metadata: { $lastUpdated: expect.any(String) }, $version: 1 });
  expect(twin.properties.desired.$metadata.$lastUpdated).not.toBe(NEVER);
});

it("a new module twin has $lastUpdated 0001-01-01T00:00:00Z in both sections", async () => {
  await registry.create({ deviceId: "v-mod-dev" });
  await registry.addModule({ deviceId: "v-mod-dev", moduleId: "m" });
  const twin = (await registry.getModuleTwin("v-mod-dev", "m")).responseBody as any;
  expect(twin.etag).toBe("AAAAAAAAAAE=");
  expect(twin.properties).toEqual({
    desired: { $metadata: { $lastUpdated: NEVER }, $version: 1 },
    reported: { $metadata: { $lastUpdated: NEVER }, $version: 1 },
  });
});

it("the first desired patch is $version 2, and the device is told so", async () => {
  await registry.create({ deviceId: "v-patch" });
  const device = (await registry.get("v-patch")).responseBody;
  const client = Client.fromConnectionString(
    `HostName=${hub.hostName};DeviceId=v-patch;SharedAccessKey=${device.authentication!.symmetricKey!.primaryKey}`,
    Mqtt,
  );
  closers.push(() => client.close());
  await client.open();
  const twin = await client.getTwin();
  expect(twin.properties.desired.$version).toBe(1);
  const patches: any[] = [];
  let first = true;
  twin.on("properties.desired", (delta: any) => (first ? (first = false) : patches.push(delta)));

  const answer = (await registry.updateTwin("v-patch", { properties: { desired: { username: "userA" } } }, "*"))
    .responseBody as any;
  expect(answer.etag).toBe("AAAAAAAAAAI=");
  expect(answer.version).toBe(3);
  expect(answer.properties.desired.$version).toBe(2);
  expect(answer.properties.desired.$metadata).toMatchObject({
    $lastUpdatedVersion: 2,
    username: { $lastUpdatedVersion: 2 },
  });
  await eventually(() => patches.length === 1, "the desired patch on the device");
  expect(patches[0]).toEqual({ username: "userA", $version: 2 });
});

it("the first reported patch answers $iothub/twin/res/204 with $version=2", async () => {
  const device = await createDevice(hub, "v-report");
  const { client } = await connectAs(hub, "v-report", device.token());
  closers.push(() => Promise.resolve(client.end()));
  client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
  await client.next("suback");
  client.send({
    cmd: "publish",
    topic: "$iothub/twin/PATCH/properties/reported/?$rid=7",
    payload: Buffer.from('{"firmware":"1.0"}'),
    qos: 0,
    dup: false,
    retain: false,
  });
  const response = await client.next<mqtt.IPublishPacket>("publish");
  expect(response.topic).toBe("$iothub/twin/res/204/?$rid=7&$version=2");
});

it("a module's first reported patch through the SDK makes reported $version 2", async () => {
  await registry.create({ deviceId: "v-sdk-report" });
  await registry.addModule({ deviceId: "v-sdk-report", moduleId: "m" });
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "v-sdk-report", "m"), Mqtt);
  closers.push(() => client.close());
  await client.open();
  const twin = await client.getTwin();
  expect(twin.properties.reported.$version).toBe(1);
  await reportOver(twin, { firmware: "1.0" });
  const read = (await registry.getModuleTwin("v-sdk-report", "m")).responseBody as any;
  expect(read.properties.reported).toMatchObject({ firmware: "1.0", $version: 2 });
});

it("a twin stored by an older hub at $version 0 still loads, and its versions grow from there", async () => {
  const dataDir = tempDir();
  // The record an older hub wrote: versions from 0, $lastUpdatedVersion 0, a hub-wide etag, a hex generationId.
  const legacy: StoredRecord = {
    deviceId: "old-dev",
    generationId: "3f2c9a7d1e0b4c5a6d",
    etag: "Nw==",
    status: "enabled",
    statusReason: null,
    statusUpdatedTime: "2026-01-01T00:00:00.000Z",
    connectionStateUpdatedTime: NEVER,
    lastActivityTime: NEVER,
    authentication: {
      type: "sas",
      symmetricKey: {
        primaryKey: Buffer.alloc(32, 1).toString("base64"),
        secondaryKey: Buffer.alloc(32, 2).toString("base64"),
      },
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    },
    twin: {
      etag: "AAAAAAAAAAg=",
      version: 1,
      tags: {},
      desired: {
        values: {},
        metadata: { $lastUpdated: "2026-01-01T00:00:00.000Z", $lastUpdatedVersion: 0 },
        version: 0,
      },
      reported: { values: {}, metadata: { $lastUpdated: "2026-01-01T00:00:00.000Z" }, version: 0 },
    },
  };
  const store = await JournalStore.open<StoredRecord>(path.join(dataDir, "state"));
  store.put("device:old-dev", legacy);
  store.put("etagSequence", 8);
  await store.sync();
  await store.close();

  const old = await startTestHub(dataDir);
  try {
    const oldRegistry = Registry.fromConnectionString(old.connectionString);
    const before = (await oldRegistry.getTwin("old-dev")).responseBody as any;
    expect(before.properties.desired.$version).toBe(0);
    expect(before.capabilities).toEqual({ iotEdge: false });
    const after = (await oldRegistry.updateTwin("old-dev", { properties: { desired: { a: 1 } } }, before.etag))
      .responseBody as any;
    expect(after.properties.desired.$version).toBe(1);
    expect(after.etag).toBe("AAAAAAAAAAk=");
  } finally {
    await old.stop();
  }
});
