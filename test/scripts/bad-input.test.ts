/**
 * Every mistake a newcomer makes gets one clear line, a non-zero exit code, no stack trace and no key. Each case is a
 * script's own process and none depends on another, so they run side by side.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Hub } from "../localhub";
import { ROOT } from "../helpers/paths";
import { moduleConnectionString, scriptEnv, startTestHub, tempDir } from "../helpers/hub";
import { runScript } from "../helpers/scripts";

const SCRIPTS = [
  "CreateModule.ts",
  "UpdateModuleTwinDesiredProperties.ts",
  "ReceiveModuleTwinDesiredPropertiesPatch.ts",
];
const WRONG_KEY = Buffer.alloc(32, 5).toString("base64");
let hub: Hub;
/** A hub that ran once and is stopped: where "the hub is not running" points. */
let stoppedHub: Hub;
let moduleString: string;
let deviceString: string;

beforeAll(async () => {
  stoppedHub = await startTestHub();
  await stoppedHub.stop();
  hub = await startTestHub();
  await hub.core.identities.putDevice("myFirstDevice", {}, undefined);
  await hub.core.identities.putModule("myFirstDevice", "myFirstModule", {}, undefined);
  moduleString = moduleConnectionString(hub, "myFirstDevice", "myFirstModule");
  deviceString = moduleConnectionString(hub, "myFirstDevice");
});
afterAll(() => hub.stop());

/** Runs a script and checks the shape every failure must have; returns its one line. */
async function failure(script: string, env: NodeJS.ProcessEnv, expectedCode: number, cwd?: string): Promise<string> {
  const result = await runScript(script, env, [], cwd);
  expect(result.code).toBe(expectedCode);
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^Error: /);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  for (const secret of [
    WRONG_KEY,
    hub.connectionString.split("SharedAccessKey=")[1],
    moduleString.split("SharedAccessKey=")[1],
  ]) {
    expect(result.stdout + result.stderr).not.toContain(secret);
  }
  return lines[0];
}

it.concurrent.each(SCRIPTS)("%s without .env names the missing variable (exit 2)", async (script) => {
  expect(await failure(script, {}, 2)).toMatch(
    /(IOTHUB|MODULE)_CONNECTION_STRING is not set: copy \.env\.example to \.env/,
  );
});

it.concurrent.each(SCRIPTS)(
  "%s with the placeholders of .env.example says to replace them (exit 2)",
  async (script) => {
    const cwd = tempDir("cwd-");
    fs.copyFileSync(path.join(ROOT, ".env.example"), path.join(cwd, ".env"));
    expect(await failure(script, {}, 2, cwd)).toMatch(/still holds the placeholder from \.env\.example/);
  },
);

it.concurrent("the receiver refuses a device string where the module string belongs (exit 2)", async () => {
  const line = await failure(
    "ReceiveModuleTwinDesiredPropertiesPatch.ts",
    scriptEnv(hub, { MODULE_CONNECTION_STRING: deviceString }),
    2,
  );
  expect(line).toMatch(/MODULE_CONNECTION_STRING is a device connection string \(no ModuleId=\.\.\.\)/);
});

it.concurrent("the service scripts refuse a module string where the service string belongs (exit 2)", async () => {
  for (const script of SCRIPTS.slice(0, 2)) {
    const line = await failure(script, scriptEnv(hub, { IOTHUB_CONNECTION_STRING: moduleString }), 2);
    expect(line).toMatch(/IOTHUB_CONNECTION_STRING is a module connection string/);
  }
});

it.concurrent("a wrong key gets 401 explained, naming the variable (exit 1)", async () => {
  const wrongService = `HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=${WRONG_KEY}`;
  for (const script of SCRIPTS.slice(0, 2)) {
    expect(await failure(script, scriptEnv(hub, { IOTHUB_CONNECTION_STRING: wrongService }), 1)).toMatch(
      /refused the credentials in IOTHUB_CONNECTION_STRING \(401 Unauthorized\)/,
    );
  }
  const wrongModule = moduleString.replace(/SharedAccessKey=.*/, `SharedAccessKey=${WRONG_KEY}`);
  expect(
    await failure(
      "ReceiveModuleTwinDesiredPropertiesPatch.ts",
      scriptEnv(hub, { MODULE_CONNECTION_STRING: wrongModule }),
      1,
    ),
  ).toMatch(/refused the credentials in MODULE_CONNECTION_STRING \(401 Unauthorized\)/);
});

it.concurrent("a policy without Registry Write is named as the cause (exit 1)", async () => {
  const serviceOnly = `HostName=localhost;SharedAccessKeyName=service;SharedAccessKey=${hub.core.policies.find("service")!.primaryKey}`;
  expect(await failure("CreateModule.ts", scriptEnv(hub, { IOTHUB_CONNECTION_STRING: serviceOnly }), 1)).toMatch(
    /policy lacks Registry Write and Service Connect permissions/,
  );
});

it.concurrent.each(SCRIPTS)(
  "%s without NODE_EXTRA_CA_CERTS explains the untrusted certificate (exit 1)",
  async (script) => {
    const env = scriptEnv(hub, { MODULE_CONNECTION_STRING: moduleString });
    delete env.NODE_EXTRA_CA_CERTS;
    expect(await failure(script, env, 1)).toMatch(
      /TLS certificate of localhost is not trusted: .*export NODE_EXTRA_CA_CERTS=/,
    );
  },
);

it.concurrent("the update script refuses a value that is not a whole number (exit 2)", async () => {
  const result = await runScript("UpdateModuleTwinDesiredProperties.ts", scriptEnv(hub), ["fast"]);
  expect(result.code).toBe(2);
  expect(result.stderr.trim()).toBe(
    'Error: "fast" is not a telemetry interval: give one whole number of seconds, e.g. 122.',
  );
});

it.concurrent.each(SCRIPTS)("%s with the hub not running says so (exit 1)", async (script) => {
  const env = scriptEnv(stoppedHub, { MODULE_CONNECTION_STRING: moduleString });
  expect(await failure(script, env, 1)).toMatch(/Connection to localhost refused: is the hub running\?/);
});
