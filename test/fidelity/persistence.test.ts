/** The hub keeps what it acknowledged: across a clean restart, a kill -9, and as a CLI with its start-up contract. */
import * as fs from "node:fs";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { startHub } from "../localhub/hub";
import { NODE_WITH_TSX, ROOT } from "../helpers/paths";
import {
  copyTestCertificates,
  eventually,
  moduleConnectionString,
  startTestHub,
  tempDir,
  twinOf,
} from "../helpers/hub";

/** Runs `npm run hub`'s program as its own process, on a state directory that holds the test certificates. */
function spawnHubCli(
  dataDir: string,
  ...flags: string[]
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  copyTestCertificates(dataDir);
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  const child = spawn(node, [...nodeArgs, path.join(ROOT, "test/localhub/cli.ts"), "--data", dataDir, ...flags], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

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
  const cli = spawnHubCli(dataDir, "--quiet");
  try {
    await eventually(() => /ready/.test(cli.output()), "the hub to print ready", 20_000);
    const env = fs.readFileSync(path.join(dataDir, "env"), "utf8");
    const registry = Registry.fromConnectionString(/IOTHUB_CONNECTION_STRING="([^"]+)"/.exec(env)![1]);
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

    const hub = await startHub({ dataDir });
    try {
      for (const { moduleId, key } of acknowledged) {
        expect(hub.core.identities.find("survivor", moduleId)?.authentication.symmetricKey.primaryKey).toBe(key);
        expect((twinOf(hub, "survivor", moduleId) as any).properties.desired.n).toBe(Number(moduleId.slice(1)));
      }
    } finally {
      await hub.stop();
    }
  } finally {
    cli.child.kill("SIGKILL");
  }
});

it("writes DIR/env before it says ready, and exits 0 on SIGTERM", async () => {
  const dataDir = tempDir();
  const cli = spawnHubCli(dataDir);
  await eventually(() => /ready/.test(cli.output()), "the hub to print ready", 20_000);
  const lines = fs.readFileSync(path.join(dataDir, "env"), "utf8").trimEnd().split("\n");
  expect(lines).toEqual([
    expect.stringMatching(
      /^IOTHUB_CONNECTION_STRING="HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]{44}"$/,
    ),
    `NODE_EXTRA_CA_CERTS=${path.join(dataDir, "ca.pem")}`,
  ]);
  expect(cli.output()).toContain(`export NODE_EXTRA_CA_CERTS=${path.join(dataDir, "ca.pem")}`);
  expect(cli.output()).toMatch(/listening on https:\/\/127\.0\.0\.1:443, mqtts:\/\/127\.0\.0\.1:8883/);
  // The key is in the env file, not on the screen.
  expect(cli.output()).not.toContain(/SharedAccessKey=([^"]+)"/.exec(lines[0])![1]);
  cli.child.kill("SIGTERM");
  expect(await cli.exited).toBe(0);
});

it("says which port is taken and how to fix it, instead of crashing", async () => {
  const hub = await startTestHub();
  try {
    const second = spawnHubCli(tempDir());
    expect(await second.exited).toBe(1);
    const lines = second.output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Error: Cannot listen on port 443: it is already in use .* Stop it and try again\.$/);
  } finally {
    await hub.stop();
  }
});

// On Linux a normal user may not bind ports below 1024 (unless net.ipv4.ip_unprivileged_port_start allows it).
const unprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
const lowPortsAllowed = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8")) <= 443;
(process.platform === "linux" && !lowPortsAllowed ? it : it.skip)(
  "tells a user without privileges how to bind port 443",
  async () => {
    const dataDir = tempDir();
    fs.chmodSync(dataDir, 0o777); // the unprivileged user writes its certificates there
    const [node, ...nodeArgs] = NODE_WITH_TSX;
    const child = spawn(node, [...nodeArgs, path.join(ROOT, "test/localhub/cli.ts"), "--data", dataDir], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, HOME: dataDir },
      ...unprivileged,
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(code).toBe(1);
    expect(output.trim()).toBe(
      "Error: Cannot listen on port 443: ports below 1024 need privileges on Linux. Run as root, or allow it once with " +
        "`sudo sysctl net.ipv4.ip_unprivileged_port_start=443`.",
    );
  },
);

it("forgets everything on restart with --in-memory, but keeps its certificates", async () => {
  const dataDir = tempDir();
  const first = await startHub({ dataDir, inMemory: true });
  await first.core.identities.putDevice("ephemeral", {}, undefined);
  await first.stop();
  const second = await startHub({ dataDir, inMemory: true });
  try {
    expect(second.core.identities.find("ephemeral")).toBeUndefined();
    expect(fs.existsSync(path.join(dataDir, "state"))).toBe(false);
  } finally {
    await second.stop();
  }
});
