/** Clearing a whole twin section from the service side, as `twin.update({ properties: { desired: null } })` does. */
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub, twinOf } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
let client: ModuleClient;
const patches: any[] = [];

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "clearing" });
  await registry.addModule({ deviceId: "clearing", moduleId: "m" });
  client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "clearing", "m"), Mqtt);
  await client.open();
  const twin = await client.getTwin();
  let first = true;
  twin.on("properties.desired", (delta: any) => (first ? (first = false) : patches.push(delta)));
  await eventually(() => !first, "the initial desired state");
});
afterAll(async () => {
  await client.close().catch(() => {});
  await hub.stop();
});

it("desired: null removes every desired property, bumps $version, and tells the device each removed key", async () => {
  const moduleTwin = (await registry.getModuleTwin("clearing", "m")).responseBody;
  await moduleTwin.update({ properties: { desired: { a: 1, nested: { b: 2 } } } });
  await eventually(() => patches.length === 1, "the first patch");
  const cleared = (await registry.getModuleTwin("clearing", "m")).responseBody;
  await cleared.update({ properties: { desired: null } });

  const after = (await registry.getModuleTwin("clearing", "m")).responseBody as any;
  expect(Object.keys(after.properties.desired).filter((k) => !k.startsWith("$"))).toEqual([]);
  expect(after.properties.desired.$version).toBe(3);
  await eventually(() => patches.length === 2, "the clearing patch");
  expect(patches[1]).toEqual({ a: null, nested: null, $version: 3 });
});

it("tags: null removes every tag", async () => {
  const twin = (await registry.getModuleTwin("clearing", "m")).responseBody;
  await twin.update({ tags: { site: "lab", floor: 2 } });
  expect(((await registry.getModuleTwin("clearing", "m")).responseBody as any).tags).toEqual({ site: "lab", floor: 2 });
  const again = (await registry.getModuleTwin("clearing", "m")).responseBody;
  await again.update({ tags: null });
  // The hub's JSON, not the SDK's Twin object (which always has a tags property): no tags left, as on the real hub.
  expect(twinOf(hub, "clearing", "m")).not.toHaveProperty("tags");
});
