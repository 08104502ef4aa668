/**
 * Commit, then notify: a device sees a desired patch only once the hub has made it durable, so no `$version` it saw
 * can be taken back by a crash and given to other content.
 */
import { Registry } from "azure-iothub";
import { ModuleClient, Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { HeldBackStore } from "../helpers/held-back-store";
import { spawnHubCli } from "../helpers/hub-process";
import { eventually, moduleConnectionString, startTestHub, tempDir } from "../helpers/hub";

/** The SDK's RetryPolicy shape (azure-iot-common's NoRetry, which is not a dependency of ours): never retry. */
const NO_RETRY = { shouldRetry: () => false, nextRetryTimeout: () => -1 };

async function desiredPatches(client: ModuleClient): Promise<{ twin: Twin; patches: any[] }> {
  const twin = await client.getTwin();
  const patches: any[] = [];
  let first = true;
  twin.on("properties.desired", (delta: any) => (first ? (first = false) : patches.push(delta)));
  await eventually(() => !first, "the first desired event");
  return { twin, patches };
}

it("does not show a desired patch to the device, nor answer the service, before the change is durable", async () => {
  const dataDir = tempDir();
  const store = new HeldBackStore();
  const hub = await startTestHub(dataDir, { store });
  let module: ModuleClient | undefined;
  try {
    const registry = Registry.fromConnectionString(hub.connectionString);
    await registry.create({ deviceId: "slow-disk" });
    await registry.addModule({ deviceId: "slow-disk", moduleId: "m" });
    module = ModuleClient.fromConnectionString(moduleConnectionString(hub, "slow-disk", "m"), Mqtt);
    await module.open();
    const { patches } = await desiredPatches(module);

    store.hold();
    let answered = false;
    const update = registry
      .updateModuleTwin("slow-disk", "m", { properties: { desired: { held: 1 } } }, "*")
      .then((r) => ((answered = true), r));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(patches).toEqual([]);
    expect(answered).toBe(false);

    store.release();
    await update;
    await eventually(() => patches.length === 1, "the patch after the sync");
    expect(patches[0]).toMatchObject({ held: 1, $version: 2 });
  } finally {
    await module?.close().catch(() => {});
    await hub.stop();
  }
});

it("never reuses a $version a device has seen, across kill -9 under a stream of patches", async () => {
  const dataDir = tempDir();
  let hub = spawnHubCli(dataDir, ["--quiet", "--https-port", "0", "--mqtt-port", "0"]);
  let module: ModuleClient | undefined;
  try {
    await hub.ready();
    const connectionString = hub.connect();
    const registry = Registry.fromConnectionString(connectionString);
    await registry.create({ deviceId: "crash" });
    await registry.addModule({ deviceId: "crash", moduleId: "m" });
    const key = (await registry.getModule("crash", "m")).responseBody.authentication!.symmetricKey!.primaryKey;
    module = ModuleClient.fromConnectionString(
      `HostName=localhost;DeviceId=crash;ModuleId=m;SharedAccessKey=${key}`,
      Mqtt,
    );
    const seen = new Map<number, number>(); // $version -> the value the device saw with it
    await module.open();
    const { patches } = await desiredPatches(module);
    // Patches in flight, several at a time, while the hub is killed.
    let sent = 0;
    const stream = (async () => {
      while (sent < 400) {
        const batch = Array.from({ length: 8 }, () => ++sent);
        await Promise.all(
          batch.map((n) =>
            registry.updateModuleTwin("crash", "m", { properties: { desired: { n } } }, "*").catch(() => {}),
          ),
        );
      }
    })();
    await eventually(() => patches.length >= 40, "40 patches to reach the device");
    // What the device saw is fixed at the kill. Left to its default policy it would reconnect with a retry timer that
    // close() does not cancel (the SDK retries for up to 4 minutes), which keeps this jest worker from exiting.
    module.setRetryPolicy(NO_RETRY);
    hub.child.kill("SIGKILL");
    await hub.exited;
    await stream;
    for (const patch of patches) seen.set(patch.$version, patch.n);

    hub = spawnHubCli(dataDir, ["--quiet", "--https-port", "0", "--mqtt-port", "0"]);
    await hub.ready();
    hub.connect(); // new ports: the redirect follows them
    const twin = (await registry.getModuleTwin("crash", "m")).responseBody as any;
    const highestSeen = Math.max(...seen.keys());
    // The hub remembers at least every version it announced, with the content it announced.
    expect(twin.properties.desired.$version).toBeGreaterThanOrEqual(highestSeen);
    if (twin.properties.desired.$version === highestSeen) expect(twin.properties.desired.n).toBe(seen.get(highestSeen));
    const next = (await registry.updateModuleTwin("crash", "m", { properties: { desired: { n: -1 } } }, "*"))
      .responseBody as any;
    expect(next.properties.desired.$version).toBeGreaterThan(highestSeen);
  } finally {
    await module?.close().catch(() => {});
    await hub.stop();
  }
}, 60_000);
