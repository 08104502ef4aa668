/**
 * A twin read back can be PATCHed whole, as the .NET and Python registry samples do: the body carries desired with
 * `$metadata`/`$version`, a reported section holding only `$metadata`/`$version`, and the identity fields. Azure
 * answers 200 and ignores the read-only parts: the recorded session in Azure/azure-sdk-for-net
 * `sdk/iot/Azure.IoT.Hub.Service/tests/SessionRecords/DevicesClientTests/DevicesClient_DeviceTwinLifecycle.json`
 * (and ModulesClientTests/ModulesClient_DeviceTwinLifecycle.json for a module twin) sends exactly that body.
 */
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub } from "../helpers/hub";

let hub: Hub;
let registry: Registry;

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterAll(() => hub.stop());

/** The twin as the registry read it, plain JSON, as a .NET or Python client serializes it back. */
async function readBack(deviceId: string, moduleId?: string): Promise<any> {
  const twin = moduleId ? await registry.getModuleTwin(deviceId, moduleId) : await registry.getTwin(deviceId);
  return JSON.parse(JSON.stringify(twin.responseBody));
}

it("a device twin read back, changed and PATCHed whole answers 200 and ignores the read-only parts", async () => {
  await registry.create({ deviceId: "whole-dev" });
  const twin = await readBack("whole-dev");
  expect(Object.keys(twin.properties.reported)).toEqual(["$metadata", "$version"]);
  twin.properties.desired.username = "userA";
  twin.statusUpdateTime = "2030-01-01T00:00:00Z"; // read-only: ignored
  const answer = (await registry.updateTwin("whole-dev", twin, "*")).responseBody as any;
  expect(answer.properties.desired).toMatchObject({ username: "userA", $version: 2 });
  expect(answer.properties.desired.$metadata.username.$lastUpdatedVersion).toBe(2);
  expect(answer.properties.reported).toEqual({ $metadata: expect.any(Object), $version: 1 });
  expect(answer.statusUpdateTime).toBe("0001-01-01T00:00:00Z");
  expect(answer.etag).toBe("AAAAAAAAAAI=");
});

it("a module twin PATCHed whole reaches the module as a patch without $metadata", async () => {
  await registry.create({ deviceId: "whole-mod-dev" });
  await registry.addModule({ deviceId: "whole-mod-dev", moduleId: "m" });
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "whole-mod-dev", "m"), Mqtt);
  try {
    await client.open();
    const deviceTwin = await client.getTwin();
    const patches: any[] = [];
    let first = true;
    deviceTwin.on("properties.desired", (delta: any) => (first ? (first = false) : patches.push(delta)));

    const twin = await readBack("whole-mod-dev", "m");
    twin.properties.desired.telemetryInterval = 122;
    const answer = (await registry.updateModuleTwin("whole-mod-dev", "m", twin, twin.etag)).responseBody as any;
    expect(answer.properties.desired).toMatchObject({ telemetryInterval: 122, $version: 2 });
    await eventually(() => patches.length === 1, "the patch on the module");
    expect(patches[0]).toEqual({ telemetryInterval: 122, $version: 2 });
  } finally {
    await client.close();
  }
});

it("a read-back twin whose reported section holds values is still refused with 400", async () => {
  await registry.create({ deviceId: "whole-reported" });
  const twin = await readBack("whole-reported");
  twin.properties.reported.firmware = "2.0";
  const err = await registry.updateTwin("whole-reported", twin, "*").catch((e) => e);
  expect(err.response?.statusCode).toBe(400);
  expect(JSON.parse(err.responseBody).Message).toMatch(/^ErrorCode:ArgumentInvalid;reported properties/);
});
