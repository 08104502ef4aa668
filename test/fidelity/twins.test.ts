/** Module and device twins: the service side with azure-iothub, the device side with azure-iot-device over MQTT. */
import { Registry } from "azure-iothub";
import { Client, Message, ModuleClient, Twin } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, policyToken, rawRequest, startTestHub, twinOf } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
const clients: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "twin-dev" });
  for (const moduleId of ["a", "b", "away"]) await registry.addModule({ deviceId: "twin-dev", moduleId });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(() => hub.stop());

async function openModule(moduleId: string, transport: unknown = Mqtt): Promise<{ client: ModuleClient; twin: Twin }> {
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "twin-dev", moduleId), transport);
  clients.push(client);
  await client.open();
  return { client, twin: await client.getTwin() };
}

/** Collects the 'properties.desired' events after the first one (the whole current state). */
function collectPatches(twin: Twin): any[] {
  const patches: any[] = [];
  let first = true;
  twin.on("properties.desired", (delta: any) => {
    if (first) first = false;
    else patches.push(delta);
  });
  return patches;
}

describe("service side", () => {
  it("reads a new module twin with empty properties, version 1 and an etag", async () => {
    const twin = (await registry.getModuleTwin("twin-dev", "a")).responseBody as any;
    expect(twin).toMatchObject({
      deviceId: "twin-dev",
      moduleId: "a",
      properties: { desired: { $version: 1 }, reported: { $version: 1 } },
    });
    expect(typeof twin.etag).toBe("string");
    expect(twinOf(hub, "twin-dev", "a")).not.toHaveProperty("tags"); // omitted while empty, as on the real hub
  });

  it("merges desired patches deeply, stamps $metadata and deletes keys set to null", async () => {
    const { etag } = (await registry.getModuleTwin("twin-dev", "a")).responseBody;
    await registry.updateModuleTwin(
      "twin-dev",
      "a",
      { properties: { desired: { telemetryInterval: 10, nested: { x: 1, y: 2 } } } },
      etag,
    );
    const after = (
      await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { nested: { y: null, z: 3 } } } }, "*")
    ).responseBody as any;
    expect(after.properties.desired).toMatchObject({ telemetryInterval: 10, nested: { x: 1, z: 3 }, $version: 3 });
    expect(after.properties.desired.nested).not.toHaveProperty("y");
    expect(after.properties.desired.$metadata.telemetryInterval).toEqual({
      $lastUpdated: expect.any(String),
      $lastUpdatedVersion: 2,
    });
    expect(after.properties.desired.$metadata.nested.z.$lastUpdatedVersion).toBe(3);
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { nested: null } } }, "*");
    expect((await registry.getModuleTwin("twin-dev", "a")).responseBody.properties.desired).not.toHaveProperty(
      "nested",
    );
  });

  it("refuses a stale etag with 412 InvalidEtagError and accepts '*'", async () => {
    const { etag } = (await registry.getModuleTwin("twin-dev", "a")).responseBody;
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: 11 } } }, etag);
    const err = await registry
      .updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: 12 } } }, etag)
      .catch((e) => e);
    expect(err.name).toBe("InvalidEtagError");
    expect(err.response.statusCode).toBe(412);
    const forced = (
      await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: 13 } } }, "*")
    ).responseBody;
    expect(forced.properties.desired.telemetryInterval).toBe(13);
  });

  it("keeps tags, and replaces tags and desired whole on PUT", async () => {
    const withTags = (await registry.updateModuleTwin("twin-dev", "b", { tags: { site: "lab", floor: 2 } }, "*"))
      .responseBody as any;
    expect(withTags.tags).toEqual({ site: "lab", floor: 2 });
    const { etag } = (await registry.getModuleTwin("twin-dev", "b")).responseBody;
    const response = await rawRequest("PUT", "/twins/twin-dev/modules/b?api-version=2021-04-12", {
      authorization: policyToken(hub, "service"),
      headers: { "If-Match": `"${etag}"` },
      body: JSON.stringify({ tags: { site: "home" }, properties: { desired: { only: true } } }),
    });
    expect(response.status).toBe(200);
    const replaced = JSON.parse(response.body);
    expect(replaced.tags).toEqual({ site: "home" });
    expect(replaced.properties.desired).toMatchObject({ only: true });
  });

  it("works the same for device twins", async () => {
    const twin = (await registry.getTwin("twin-dev")).responseBody;
    await twin.update({ tags: { role: "gateway" }, properties: { desired: { mode: "eco" } } });
    const read = (await registry.getTwin("twin-dev")).responseBody as any;
    expect(read.tags).toEqual({ role: "gateway" });
    expect(read.properties.desired.mode).toBe("eco");
    expect(read).not.toHaveProperty("moduleId");
  });

  it("refuses what the real hub refuses in a patch", async () => {
    const patch = (desired: unknown) =>
      registry.updateModuleTwin("twin-dev", "a", { properties: { desired } }, "*").catch((e) => e);
    expect((await patch({ "bad.key": 1 })).response.statusCode).toBe(400);
    expect((await patch({ $bad: 1 })).response.statusCode).toBe(400);
    expect((await patch({ big: "x".repeat(5000) })).response.statusCode).toBe(400);
    let deep: any = 1;
    for (let i = 0; i < 12; i++) deep = { d: deep }; // 11 levels below the desired section: one too many
    expect((await patch(deep)).response.statusCode).toBe(400);
    const tooLarge: Record<string, string> = {};
    for (let i = 0; i < 10; i++) tooLarge[`k${i}`] = "y".repeat(4000);
    expect((await patch(tooLarge)).response.statusCode).toBe(400);
    const reported = await registry
      .updateModuleTwin("twin-dev", "a", { properties: { reported: { x: 1 } } }, "*")
      .catch((e) => e);
    expect(reported.response.statusCode).toBe(400);
  });

  it("answers 404 for the twin of a missing module", async () => {
    const err = await registry.getModuleTwin("twin-dev", "missing").catch((e) => e);
    expect(err.response.statusCode).toBe(404);
  });
});

describe("device side over MQTT", () => {
  it("gets the twin, then receives desired patches as they are made", async () => {
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: 20 } } }, "*");
    const { twin } = await openModule("a");
    expect(twin.properties.desired.telemetryInterval).toBe(20);
    const patches = collectPatches(twin);
    const version = twin.properties.desired.$version;
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: 122 } } }, "*");
    await eventually(() => patches.length === 1, "one desired patch");
    expect(patches[0]).toEqual({ telemetryInterval: 122, $version: version + 1 });
  });

  it("delivers a desired patch to its own module only", async () => {
    const a = await openModule("a");
    const b = await openModule("b");
    const patchesA = collectPatches(a.twin);
    const patchesB = collectPatches(b.twin);
    await registry.updateModuleTwin("twin-dev", "b", { properties: { desired: { onlyForB: true } } }, "*");
    await eventually(() => patchesB.length === 1, "the patch for b");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(patchesA).toEqual([]);
  });

  it("notifies a patch even when the value did not change, and deletions as null", async () => {
    const { twin } = await openModule("a");
    const patches = collectPatches(twin);
    const current = twin.properties.desired.telemetryInterval;
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: current } } }, "*");
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { telemetryInterval: null } } }, "*");
    await eventually(() => patches.length === 2, "two patches");
    expect(patches[0].telemetryInterval).toBe(current);
    expect(patches[1]).toHaveProperty("telemetryInterval", null);
  });

  it("makes reported properties visible to the service, with a growing $version", async () => {
    const { twin } = await openModule("a");
    const before = (await registry.getModuleTwin("twin-dev", "a")).responseBody.properties.reported.$version;
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ telemetryInterval: 122, firmware: { version: "1.0" } }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    const reported = (await registry.getModuleTwin("twin-dev", "a")).responseBody.properties.reported as any;
    expect(reported).toMatchObject({ telemetryInterval: 122, firmware: { version: "1.0" }, $version: before + 1 });
    expect(reported.$metadata.telemetryInterval.$lastUpdated).toEqual(expect.any(String));
  });

  it("shows patches made while a module was away on its next twin GET", async () => {
    const first = await openModule("away");
    await first.client.close();
    clients.splice(clients.indexOf(first.client), 1);
    await registry.updateModuleTwin("twin-dev", "away", { properties: { desired: { whileAway: 1 } } }, "*");
    await registry.updateModuleTwin("twin-dev", "away", { properties: { desired: { whileAway: 2 } } }, "*");
    const { twin } = await openModule("away");
    expect(twin.properties.desired).toMatchObject({ whileAway: 2, $version: 3 });
  });

  it("keeps a client's subscriptions when it reconnects after a dropped connection (clean session false)", async () => {
    const { client, twin } = await openModule("a");
    const patches = collectPatches(twin);
    const reconnected = new Promise<void>((resolve) => client.once("connect", () => resolve()));
    hub.mqtt.closeAll();
    await reconnected; // the SDK reconnects by itself and does not subscribe again
    await registry.updateModuleTwin("twin-dev", "a", { properties: { desired: { afterReconnect: true } } }, "*");
    await eventually(() => patches.some((p) => p.afterReconnect === true), "the patch after the reconnect");
  });

  it("shows connectionState Connected while a module is connected", async () => {
    const { client } = await openModule("b");
    expect((await registry.getModule("twin-dev", "b")).responseBody.connectionState).toBe("Connected");
    await client.close();
    await eventually(() => twinOf(hub, "twin-dev", "b").connectionState === "Disconnected", "Disconnected");
  });

  it("works over MQTT on WebSockets (MqttWs) too", async () => {
    const { twin } = await openModule("b", MqttWs);
    const patches = collectPatches(twin);
    await registry.updateModuleTwin("twin-dev", "b", { properties: { desired: { overWs: true } } }, "*");
    await eventually(() => patches.length === 1, "a patch over WebSockets");
    expect(patches[0].overWs).toBe(true);
  });

  it("acknowledges device-to-cloud telemetry at QoS 1", async () => {
    const { client } = await openModule("b");
    const result = await client.sendEvent(new Message(JSON.stringify({ temperature: 21.5 })));
    expect(result.constructor.name).toBe("MessageEnqueued");
  });

  it("serves a device (not a module) client the same way", async () => {
    const device = Client.fromConnectionString(moduleConnectionString(hub, "twin-dev"), Mqtt);
    clients.push(device);
    await device.open();
    const twin = await device.getTwin();
    expect(twin.properties.desired.mode).toBe("eco");
  });
});
