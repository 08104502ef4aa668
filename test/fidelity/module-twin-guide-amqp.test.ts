/**
 * The module identity twin flow of Microsoft's Node.js guide (MicrosoftDocs azure-docs
 * `includes/iot-hub-howto-module-twins-node.md`, "Complete example" and "Create a backend application"), written in
 * our own words and run against the hub: `Client.fromConnectionString(moduleConnectionString, Amqp)`, open, getTwin,
 * desired listeners for all patches, for a grouping and for one property, a reported patch; the backend reads the
 * module twin with getModuleTwin and applies its desired patches with `twin.update`.
 */
import { Registry, Twin as ServiceTwin } from "azure-iothub";
import { Client, ModuleClient, Twin } from "azure-iot-device";
import { Amqp } from "azure-iot-device-amqp";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub } from "../helpers/hub";

const deviceId = "myFirstDevice2";
let hub: Hub;
let registry: Registry;
const logged: string[] = [];

beforeAll(async () => {
  hub = await startTestHub(undefined, { log: (line) => logged.push(line) });
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId });
  // One module for each run: the SDK replays a property it already holds to a listener added later.
  for (const moduleId of ["myFirstModule2", "myFirstModule3"]) await registry.addModule({ deviceId, moduleId });
});
afterAll(() => hub.stop());

/** The guide's backend: getModuleTwin, then `twin.update(patch)` on the Twin it got (callbacks, as written there). */
function backendPatch(moduleId: string, desired: object): Promise<void> {
  return new Promise((resolve, reject) =>
    registry.getModuleTwin(deviceId, moduleId, (err, twin?: ServiceTwin) => {
      if (err || !twin) return reject(err ?? new Error("no twin"));
      twin.update({ properties: { desired } }, (updateErr) => (updateErr ? reject(updateErr) : resolve()));
    }),
  );
}

describe.each([
  ["Client (the guide's complete example)", Client, "myFirstModule2"],
  ["ModuleClient", ModuleClient, "myFirstModule3"],
])("a module app built with %s over Amqp", (_name, ClientType, moduleId) => {
  it("reads its twin, reports, and hears every desired change as the guide's listeners expect", async () => {
    const seen = { all: [] as any[], climate: [] as any[], fan: [] as any[], errors: [] as string[] };
    const client = (ClientType as typeof Client).fromConnectionString(
      moduleConnectionString(hub, deviceId, moduleId),
      Amqp,
    );
    client.on("error", (err: Error) => seen.errors.push(err.message));
    try {
      await new Promise<void>((resolve, reject) => client.open((err) => (err ? reject(err) : resolve())));
      const twin = await new Promise<Twin>((resolve, reject) =>
        client.getTwin((err, got) => (err || !got ? reject(err ?? new Error("no twin")) : resolve(got))),
      );
      expect(twin.properties.desired.$version).toEqual(expect.any(Number));
      const subscriptions = logged.length;
      const wholeAtStart = JSON.parse(JSON.stringify(twin.properties.desired));
      twin.on("properties.desired", (delta: any) => seen.all.push(JSON.parse(JSON.stringify(delta))));
      twin.on("properties.desired.climate", (delta: any) => seen.climate.push({ ...delta }));
      twin.on("properties.desired.climate.hvac.systemControl", (fanOn: any) => seen.fan.push({ ...fanOn }));

      const patch = {
        updateTime: new Date().toString(),
        firmwareVersion: "1.2.1",
        weather: { temperature: 75, humidity: 20 },
      };
      await new Promise<void>((resolve, reject) =>
        twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())),
      );
      const reported = (await registry.getModuleTwin(deviceId, moduleId)).responseBody.properties.reported;
      expect(reported).toMatchObject(patch);

      // The SDK subscribes once the first listener is added; the hub logs the subscription it took.
      const key = `${deviceId}/${moduleId}`;
      await eventually(
        () => logged.slice(subscriptions).some((line) => line.startsWith(`AMQP TWIN ${key} PUT 200`)),
        "the desired subscription",
      );
      await backendPatch(moduleId, { climate: { minTemperature: 69, maxTemperature: 77 } });
      await eventually(() => seen.climate.length >= 1, "the climate patch");
      await backendPatch(moduleId, { climate: { hvac: { systemControl: { fanOn: true } } } });
      await eventually(() => seen.fan.length >= 1, "the fan patch");

      const version = (await registry.getModuleTwin(deviceId, moduleId)).responseBody.properties.desired.$version;
      // First the whole desired state (not a patch), then each patch with its $version.
      expect(seen.all[0]).toEqual(wholeAtStart);
      expect(seen.all).toHaveLength(3);
      expect(seen.all.slice(1)).toEqual([
        { climate: { minTemperature: 69, maxTemperature: 77 }, $version: version - 1 },
        { climate: { hvac: { systemControl: { fanOn: true } } }, $version: version },
      ]);
      expect(seen.climate[0]).toMatchObject({ minTemperature: 69, maxTemperature: 77 });
      expect(seen.fan).toEqual([{ fanOn: true }]);
      expect(twin.properties.desired.climate).toMatchObject({
        minTemperature: 69,
        hvac: { systemControl: { fanOn: true } },
      });
      expect(seen.errors).toEqual([]);
    } finally {
      await client.close().catch(() => {});
    }
  });
});
