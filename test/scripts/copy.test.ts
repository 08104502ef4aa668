/**
 * The scripts as readers use them: copied with config.ts alone into a folder that has only the tutorial's five
 * packages, settings in a .env there, started with `npx tsx`, against the local hub.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Hub } from "../localhub";
import { eventually, scriptEnv, startTestHub, twinOf } from "../helpers/hub";
import { TUTORIAL_FILES, TUTORIAL_PACKAGES, readerFolder, runWithNpx, startWithNpx } from "../helpers/scripts";

let hub: Hub;
let dir: string;
/** The shell a reader has: it trusts the local hub's CA; the connection strings are in .env, not in the shell. */
let shell: NodeJS.ProcessEnv;

beforeAll(async () => {
  hub = await startTestHub();
  dir = readerFolder();
  const { IOTHUB_CONNECTION_STRING, ...rest } = scriptEnv(hub);
  shell = rest;
  fs.writeFileSync(
    path.join(dir, ".env"),
    `# from .env.example\nIOTHUB_CONNECTION_STRING="${IOTHUB_CONNECTION_STRING}"\n`,
  );
});
afterAll(async () => {
  await hub.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("the folder holds only the scripts, config.ts, .env and the tutorial's five packages", () => {
  expect(fs.readdirSync(dir).sort()).toEqual([".env", ...TUTORIAL_FILES, "node_modules"].sort());
  expect(fs.readdirSync(path.join(dir, "node_modules")).sort()).toEqual([".bin", ...TUTORIAL_PACKAGES].sort());
});

it("a script there can import the five packages but nothing else, not even what the SDKs use inside", async () => {
  const probeDir = readerFolder([]);
  try {
    const imports = TUTORIAL_PACKAGES.map((name) => `require.resolve(${JSON.stringify(name)});`).join("\n");
    // mqtt is in the repository's node_modules (azure-iot-device-mqtt uses it) but not among the five.
    const other = `try { require("mqtt"); console.log("mqtt found"); } catch (err) { console.log(err.message); }`;
    fs.writeFileSync(path.join(probeDir, "probe.ts"), `${imports}\nconsole.log("all five found");\n${other}\n`);
    const probe = await runWithNpx(probeDir, "probe.ts", shell);
    expect(probe.stderr).toBe("");
    expect(probe.stdout).toMatch(/^all five found\nCannot find (module|package) 'mqtt'/);
  } finally {
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
});

it("CreateModule.ts creates the module from the settings in .env and prints its connection string", async () => {
  const result = await runWithNpx(dir, "CreateModule.ts", shell, ["--write-env"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const module = hub.core.identities.find("myFirstDevice", "myFirstModule")!;
  const key = module.authentication.symmetricKey.primaryKey;
  const line = `MODULE_CONNECTION_STRING="HostName=localhost;DeviceId=myFirstDevice;ModuleId=myFirstModule;SharedAccessKey=${key}"`;
  expect(result.stdout).toContain(`device/module <myFirstDevice/myFirstModule> has primary key = ${key}\n`);
  expect(result.stdout).toContain(`${line}\n`);
  expect(fs.readFileSync(path.join(dir, ".env"), "utf8")).toContain(`\n${line}\n`);
});

it("the receiver prints the patch that UpdateModuleTwinDesiredProperties.ts sets, and stops on Ctrl-C", async () => {
  // The receiver reads MODULE_CONNECTION_STRING from the .env that CreateModule.ts --write-env filled in.
  const receiver = startWithNpx(dir, "ReceiveModuleTwinDesiredPropertiesPatch.ts", shell);
  try {
    await receiver.waitForOutput(/Waiting for desired property patches/);

    const update = await runWithNpx(dir, "UpdateModuleTwinDesiredProperties.ts", shell);
    expect(update.stderr).toBe("");
    expect(update.code).toBe(0);
    expect(update.stdout).toMatch(
      /Module twin properties after update:\n\{\n {2}"desired": \{\n {4}"telemetryInterval": 122,/,
    );
    await receiver.waitForOutput(/Twin desired properties patch received:\n\{\n {2}"telemetryInterval": 122,/);

    // npm itself ends on the signal, as it does in a terminal; the script closes the client and says so, no stack trace.
    receiver.signal("SIGINT");
    await receiver.exited;
    expect(receiver.stdout).toContain("IoTHubModuleClient sample stopped\nShutting down IoT Hub Client\n");
    expect(receiver.stderr).toBe("");
    // Zombies count as alive until reaped, so give the group a moment to be gone.
    await eventually(() => !receiver.groupAlive(), "npx, tsx and the script to end");
    await eventually(
      () => twinOf(hub, "myFirstDevice", "myFirstModule").connectionState === "Disconnected",
      "the hub to see the module go",
    );
  } finally {
    await receiver.stop();
  }
});
