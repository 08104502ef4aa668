/** The tutorial end to end: the three real scripts as separate processes, against the local hub. */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, scriptEnv, startTestHub, tempDir, twinOf } from "../helpers/hub";
import { ScriptRun, runScript, startScript } from "../helpers/scripts";

const DEVICE = "myFirstDevice";
const MODULE = "myFirstModule";
let hub: Hub;
let dataDir: string;
let moduleString: string;

beforeAll(async () => {
  dataDir = tempDir();
  hub = await startTestHub(dataDir);
});
afterAll(() => hub.stop());

/** The module twin's desired properties as the hub holds them, as the device sees them (no `$metadata`). */
function desiredNow(moduleId = MODULE): { $version: number; [key: string]: unknown } {
  const { $metadata, ...desired } = twinOf(hub, DEVICE, moduleId).properties.desired;
  return desired;
}

/** The module twin's reported properties as the hub holds them (no `$metadata`). */
function reportedNow(): Record<string, unknown> {
  const { $metadata, ...reported } = twinOf(hub, DEVICE, MODULE).properties.reported;
  return reported;
}

const count = (text: string, pattern: RegExp) => (text.match(new RegExp(pattern.source, "g")) ?? []).length;

/** The JSON printed after a heading line, as the scripts print it. */
function jsonAfter(text: string, heading: string): any {
  const start = text.indexOf("{", text.lastIndexOf(heading));
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === "{") depth++;
    if (text[i] === "}" && --depth === 0) return JSON.parse(text.slice(start, i + 1));
  }
  throw new Error(`no JSON after '${heading}' in:\n${text}`);
}

/** Matches once `heading` and the JSON after it have been printed `times` times, whole (its last brace at column 0). */
function printed(heading: string, times = 1): RegExp {
  const block = `${heading.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\n\\{[\\s\\S]*?\\n\\}\\n`;
  return new RegExp(`(?:${block}[\\s\\S]*){${times}}`);
}

/** Runs `test` with a receiver started and waiting for patches; stops its process afterwards, passed or failed. */
async function withReceiver(test: (receiver: ScriptRun) => Promise<void>, connectionString = moduleString) {
  const receiver = startScript(
    "ReceiveModuleTwinDesiredPropertiesPatch.ts",
    scriptEnv(hub, { MODULE_CONNECTION_STRING: connectionString }),
  );
  try {
    await receiver.waitForOutput(/Waiting for desired property patches/);
    await test(receiver);
  } finally {
    await receiver.stop();
  }
}

it("CreateModule prints both keys and a module connection string that works", async () => {
  const result = await runScript("CreateModule.ts", scriptEnv(hub));
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const device = hub.core.identities.find(DEVICE)!;
  const module = hub.core.identities.find(DEVICE, MODULE)!;
  expect(result.stdout).toContain(
    `device <${DEVICE}> has primary key = ${device.authentication.symmetricKey.primaryKey}\n`,
  );
  expect(result.stdout).toContain(
    `device/module <${DEVICE}/${MODULE}> has primary key = ${module.authentication.symmetricKey.primaryKey}\n`,
  );
  moduleString = /^MODULE_CONNECTION_STRING="([^"]+)"$/m.exec(result.stdout)![1];
  expect(moduleString).toBe(
    `HostName=localhost;DeviceId=${DEVICE};ModuleId=${MODULE};SharedAccessKey=${module.authentication.symmetricKey.primaryKey}`,
  );
});

it("CreateModule run again keeps the same keys (the 409 path), and --write-env fills .env", async () => {
  const cwd = tempDir("cwd-");
  fs.writeFileSync(path.join(cwd, ".env"), "# mine\nDEVICE_ID=myFirstDevice\n");
  const again = await runScript("CreateModule.ts", scriptEnv(hub), ["--write-env"], cwd);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain(`MODULE_CONNECTION_STRING="${moduleString}"`);
  expect(fs.readFileSync(path.join(cwd, ".env"), "utf8")).toBe(
    `# mine\nDEVICE_ID=myFirstDevice\nMODULE_CONNECTION_STRING="${moduleString}"\n`,
  );
});

it("the receiver prints the current state, then exactly one patch with telemetryInterval 122", () =>
  withReceiver(async (receiver) => {
    // A new module's twin: no desired properties yet, at the hub's first version.
    const initial = desiredNow();
    expect(Object.keys(initial)).toEqual(["$version"]);
    expect(jsonAfter(receiver.stdout, "Current desired properties (the whole state, not a patch):")).toEqual(initial);
    const update = await runScript("UpdateModuleTwinDesiredProperties.ts", scriptEnv(hub));
    expect(update.code).toBe(0);
    expect(jsonAfter(update.stdout, "Module twin properties before update:").desired).toEqual(initial);
    const patched = { telemetryInterval: 122, $version: initial.$version + 1 };
    expect(jsonAfter(update.stdout, "Module twin properties after update:").desired).toEqual(patched);
    await receiver.waitForOutput(printed("Twin desired properties patch received:"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(count(receiver.stdout, /patch received/)).toBe(1);
    expect(jsonAfter(receiver.stdout, "Twin desired properties patch received:")).toEqual(patched);

    // The receiver reports the value back; the next update run shows it in reported properties.
    await eventually(
      () => twinOf(hub, DEVICE, MODULE).properties.reported.telemetryInterval === 122,
      "the reported ack",
    );
    const reported = reportedNow();
    expect(reported).toEqual({ telemetryInterval: 122, $version: expect.any(Number) });
    const next = await runScript("UpdateModuleTwinDesiredProperties.ts", scriptEnv(hub), ["60"]);
    expect(jsonAfter(next.stdout, "Module twin properties before update:").reported).toEqual(reported);
    expect(jsonAfter(next.stdout, "Module twin properties after update:").desired.telemetryInterval).toBe(60);
    await receiver.waitForOutput(/"telemetryInterval": 60/);
  }));

it("the update script retries when the twin changes between its read and its patch (412)", async () => {
  const twins = hub.core.twins;
  const getTwin = twins.get.bind(twins);
  let interfered = false;
  // Someone else patches the twin right after the script has read it: the script's etag is stale.
  twins.get = async (deviceId, moduleId) => {
    const twin = await getTwin(deviceId, moduleId);
    if (!interfered && moduleId === MODULE) {
      interfered = true;
      await twins.patch(DEVICE, MODULE, { properties: { desired: { setBySomeoneElse: true } } }, "*");
    }
    return twin;
  };
  try {
    const result = await runScript("UpdateModuleTwinDesiredProperties.ts", scriptEnv(hub));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/The module twin changed since it was read .*reading it again \(attempt 2 of 3\)/);
    expect(jsonAfter(result.stdout, "Module twin properties after update:").desired).toMatchObject({
      telemetryInterval: 122,
      setBySomeoneElse: true,
    });
  } finally {
    twins.get = getTwin;
  }
});

/** Keeps new MQTT connections waiting until the returned function is called: the module stays away meanwhile. */
function holdConnections(): () => void {
  const mqtt = hub.mqtt;
  const accept = mqtt.accept.bind(mqtt);
  const held: Parameters<typeof accept>[] = [];
  mqtt.accept = (...args) => void held.push(args);
  return () => {
    mqtt.accept = accept;
    for (const args of held) accept(...args);
  };
}

const CAUGHT_UP = "Desired properties caught up (the whole state, read in full because patches may have been missed):";

it(
  "after a reconnect it prints the state with what changed while it was down, reports it back, never twice",
  () =>
    withReceiver(async (receiver) => {
      const patchesBefore = count(receiver.stdout, /patch received/);

      // The connection drops; two patches are made before the client is back.
      let release = holdConnections();
      hub.mqtt.closeAll();
      await hub.core.twins.patch(DEVICE, MODULE, { properties: { desired: { telemetryInterval: 300 } } }, "*");
      await hub.core.twins.patch(DEVICE, MODULE, { properties: { desired: { mode: "eco" } } }, "*");
      const missed = desiredNow();
      release();
      await receiver.waitForOutput(printed(CAUGHT_UP));
      expect(receiver.stdout).toContain("Connected to the hub again; reading the whole twin to catch up...");
      expect(jsonAfter(receiver.stdout, CAUGHT_UP)).toEqual(missed);
      expect(missed).toMatchObject({ telemetryInterval: 300, mode: "eco" });

      // The hub restarts; one more patch, which removes a key, is made before the client is back.
      // On the same ports: the receiver's process was told where the hub listens when it started.
      const ports = hub.ports;
      await hub.stop();
      hub = await startTestHub(dataDir, { httpsPort: ports.https, mqttPort: ports.mqtt, amqpPort: ports.amqp });
      release = holdConnections();
      await hub.core.twins.patch(DEVICE, MODULE, { properties: { desired: { mode: null } } }, "*");
      const afterRestart = desiredNow();
      release();
      await receiver.waitForOutput(printed(CAUGHT_UP, 2), 20_000);
      expect(jsonAfter(receiver.stdout, CAUGHT_UP)).toEqual(afterRestart);
      expect(afterRestart).not.toHaveProperty("mode");

      // What it reported back follows: the new value is there, the removed key is gone.
      const reported = () => twinOf(hub, DEVICE, MODULE).properties.reported;
      await eventually(() => reported().telemetryInterval === 300 && !("mode" in reported()), "the reported state");

      // Live patches still arrive once each, and no $version is printed twice.
      await runScript("UpdateModuleTwinDesiredProperties.ts", scriptEnv(hub), ["42"]);
      await receiver.waitForOutput(/"telemetryInterval": 42/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(count(receiver.stdout, /patch received/) - patchesBefore).toBe(1);
      expect(count(receiver.stdout, /caught up \(/)).toBe(2);
      const first = missed.$version;
      for (let v = first; v <= first + 2; v++)
        expect(count(receiver.stdout, new RegExp(`"\\$version": ${v}\\n`))).toBe(1);
    }),
  40_000,
);

it("a patch that never reached it while connected is caught up by reading the whole twin", () =>
  withReceiver(async (receiver) => {
    const session = hub.mqtt.session(`${DEVICE}/${MODULE}`)!;
    const topic = [...session.subscriptions].find((t) => t.includes("PATCH/properties/desired"))!;
    // One notification is lost on the way (the hub sends them at most once, QoS 0)...
    session.subscriptions.delete(topic);
    await hub.core.twins.patch(DEVICE, MODULE, { properties: { desired: { lost: "on the way" } } }, "*");
    session.subscriptions.add(topic);
    // ...so the next one shows a $version gap, and the receiver reads the whole twin instead of printing half a story.
    await hub.core.twins.patch(DEVICE, MODULE, { properties: { desired: { telemetryInterval: 7 } } }, "*");
    await receiver.waitForOutput(printed(CAUGHT_UP));
    expect(receiver.stdout).toContain("A patch went missing; reading the whole twin to catch up...");
    expect(jsonAfter(receiver.stdout, CAUGHT_UP)).toEqual(desiredNow());
    expect(desiredNow()).toMatchObject({ lost: "on the way", telemetryInterval: 7 });
    expect(count(receiver.stdout, /patch received/)).toBe(0);
  }));

it("reads the twin again once subscribed, so a change made while it subscribes is not missed", async () => {
  // A module never connected before: no persistent session would deliver the change.
  await hub.core.identities.putModule(DEVICE, "lateModule", {}, undefined);
  const twins = hub.core.twins;
  const deviceTwin = twins.deviceTwin.bind(twins);
  let changed = false;
  // The change lands right after the receiver's first twin read, before it has subscribed to patches.
  twins.deviceTwin = async (deviceId, moduleId) => {
    const twin = await deviceTwin(deviceId, moduleId);
    if (!changed && moduleId === "lateModule") {
      changed = true;
      await twins.patch(DEVICE, "lateModule", { properties: { desired: { setWhileSubscribing: true } } }, "*");
    }
    return twin;
  };
  try {
    await withReceiver(
      async (receiver) => {
        const changed = desiredNow("lateModule");
        expect(jsonAfter(receiver.stdout, "Current desired properties")).toEqual({ $version: changed.$version - 1 });
        await receiver.waitForOutput(printed(CAUGHT_UP));
        expect(jsonAfter(receiver.stdout, CAUGHT_UP)).toEqual({
          setWhileSubscribing: true,
          $version: changed.$version,
        });
      },
      moduleConnectionString(hub, DEVICE, "lateModule"),
    );
  } finally {
    twins.deviceTwin = deviceTwin;
  }
});

it.each(["SIGINT", "SIGTERM"] as const)("the receiver closes and exits 0 within 5 s on %s", (signal) =>
  withReceiver(async (receiver) => {
    const started = Date.now();
    receiver.child.kill(signal);
    expect(await receiver.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(receiver.stdout).toContain("IoTHubModuleClient sample stopped\nShutting down IoT Hub Client\n");
    await eventually(
      () => twinOf(hub, DEVICE, MODULE).connectionState === "Disconnected",
      "the hub to see the module go",
    );
  }),
);
