/**
 * Events after the fact: the core announces a change only after the call that made it has answered, and a listener
 * that throws can neither fail nor undo a change that is committed.
 */
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { eventually, moduleConnectionString, startTestHub, tempDir, twinOf } from "../helpers/hub";

it("answers a twin update 200, keeps it across a restart and still tells the device, when a listener of the change throws", async () => {
  const dataDir = tempDir();
  const log: string[] = [];
  let hub = await startTestHub(dataDir, { log: (line) => log.push(line) });
  let module: ModuleClient | undefined;
  try {
    const registry = Registry.fromConnectionString(hub.connectionString);
    await registry.create({ deviceId: "throwing" });
    await registry.addModule({ deviceId: "throwing", moduleId: "m" });
    module = ModuleClient.fromConnectionString(moduleConnectionString(hub, "throwing", "m"), Mqtt);
    await module.open();
    const twin = await module.getTwin();
    const patches: any[] = [];
    twin.on("properties.desired", (delta: any) => patches.push(delta));

    let calls = 0;
    hub.core.events.prependListener("desired", () => {
      calls++;
      throw new Error("a broken listener");
    });
    const { httpResponse } = await registry.updateModuleTwin(
      "throwing",
      "m",
      { properties: { desired: { kept: 1 } } },
      "*",
    );
    expect(httpResponse.statusCode).toBe(200);
    await eventually(() => patches.some((patch) => patch.kept === 1), "the patch at the device");
    expect(calls).toBe(1);
    expect(log.filter((line) => line.includes("a broken listener"))).toHaveLength(1);

    await module.close();
    module = undefined;
    await hub.stop();
    hub = await startTestHub(dataDir);
    expect(twinOf(hub, "throwing", "m").properties.desired.kept).toBe(1);
  } finally {
    await module?.close().catch(() => {});
    await hub.stop();
  }
});
