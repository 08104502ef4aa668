/** The hub keeps what it acknowledged: across a clean restart and a kill -9; --in-memory keeps nothing. */
import * as fs from "node:fs";
import * as path from "node:path";
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { spawnHubCli } from "../helpers/hub-process";
import { moduleConnectionString, startTestHub, tempDir, twinOf } from "../helpers/hub";

it("continues after a restart with the same keys, etags, versions and connection string", async () => {
  const dataDir = tempDir();
  let hub = await startTestHub(dataDir);
  let registry = Registry.fromConnectionString(hub.connectionString);
  const device = (await registry.create({ deviceId: "keeper" })).responseBody;
  await registry.addModule({ deviceId: "keeper", moduleId: "m" });
  await registry.updateModuleTwin(
    "keeper",
    "m",
    { tags: { t: 1 }, properties: { desired: { telemetryInterval: 122 } } },
    "*",
  );
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "keeper", "m"), Mqtt);
  await client.open();
  const twinClient = await client.getTwin();
  await new Promise<void>((resolve, reject) =>
    twinClient.properties.reported.update({ ack: 122 }, (err?: Error) => (err ? reject(err) : resolve())),
  );
  await client.close();
  const before = {
    module: (await registry.getModule("keeper", "m")).responseBody,
    twin: (await registry.getModuleTwin("keeper", "m")).responseBody,
  };
  const connectionString = hub.connectionString;
  await hub.stop();

  hub = await startTestHub(dataDir);
  try {
    expect(hub.connectionString).toBe(connectionString);
    registry = Registry.fromConnectionString(hub.connectionString);
    expect((await registry.get("keeper")).responseBody.authentication!.symmetricKey).toEqual(
      device.authentication!.symmetricKey,
    );
    const module = (await registry.getModule("keeper", "m")).responseBody;
    expect([module.etag, module.authentication!.symmetricKey]).toEqual([
      before.module.etag,
      before.module.authentication!.symmetricKey,
    ]);
    const twin = (await registry.getModuleTwin("keeper", "m")).responseBody as any;
    expect(twin.etag).toBe(before.twin.etag);
    expect(twin.tags).toEqual({ t: 1 });
    expect(twin.properties.desired).toMatchObject({ telemetryInterval: 122, $version: 1 });
    expect(twin.properties.reported).toMatchObject({ ack: 122, $version: 1 });
    // Versions and etags go on from where they were, never back.
    const next = (
      await registry.updateModuleTwin("keeper", "m", { properties: { desired: { telemetryInterval: 5 } } }, twin.etag)
    ).responseBody;
    expect(next.properties.desired.$version).toBe(2);
    expect(next.etag).not.toBe(twin.etag);
  } finally {
    await hub.stop();
  }
});

it("loses nothing it acknowledged when killed with SIGKILL", async () => {
  const dataDir = tempDir();
  const cli = spawnHubCli(dataDir, ["--quiet", "--https-port", "0", "--mqtt-port", "0"]);
  try {
    await cli.ready();
    const registry = Registry.fromConnectionString(cli.connect());
    await registry.create({ deviceId: "survivor" });
    // Concurrent writes, as a busy hub sees them: every one that resolved must be there after the kill.
    const acknowledged = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const module = await registry
          .addModule({ deviceId: "survivor", moduleId: `m${i}` })
          .then(() => registry.getModule("survivor", `m${i}`));
        await registry.updateModuleTwin("survivor", `m${i}`, { properties: { desired: { n: i } } }, "*");
        return { moduleId: `m${i}`, key: module.responseBody.authentication!.symmetricKey!.primaryKey };
      }),
    );
    cli.child.kill("SIGKILL");
    await cli.exited;

    const hub = await startTestHub(dataDir);
    try {
      for (const { moduleId, key } of acknowledged) {
        expect(hub.core.identities.find("survivor", moduleId)?.authentication.symmetricKey.primaryKey).toBe(key);
        expect(twinOf(hub, "survivor", moduleId).properties.desired.n).toBe(Number(moduleId.slice(1)));
      }
    } finally {
      await hub.stop();
    }
  } finally {
    await cli.stop();
  }
});

it("forgets everything on restart with --in-memory, but keeps its certificates", async () => {
  const dataDir = tempDir();
  const first = await startTestHub(dataDir, { inMemory: true });
  await first.core.identities.putDevice("ephemeral", {}, undefined);
  await first.stop();
  const second = await startTestHub(dataDir, { inMemory: true });
  try {
    expect(second.core.identities.find("ephemeral")).toBeUndefined();
    expect(fs.existsSync(path.join(dataDir, "state"))).toBe(false);
  } finally {
    await second.stop();
  }
});
