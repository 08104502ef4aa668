/**
 * The tutorial's receiver against faults on demand: after a dropped connection and after a period of refused
 * reconnects (made through the admin API, as a user would), it catches up by reading the twin, and no patch is missed.
 */
import { Registry } from "azure-iothub";
import type { Hub } from "../localhub";
import {
  clientEnv,
  eventually,
  moduleConnectionString,
  policyToken,
  rawRequest,
  startTestHub,
  tempDir,
  twinOf,
} from "../helpers/hub";
import { startScript } from "../helpers/scripts";

const DEVICE = "myFirstDevice";
const MODULE = "myFirstModule";
const FAULTS = `/$localhub/faults/devices/${DEVICE}/modules/${MODULE}`;
let hub: Hub;
const lines: string[] = [];

beforeAll(async () => {
  hub = await startTestHub(tempDir(), { log: (line) => lines.push(line) });
  const registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: DEVICE });
  await registry.addModule({ deviceId: DEVICE, moduleId: MODULE });
});
afterAll(() => hub.stop());

function startReceiver() {
  return startScript("ReceiveModuleTwinDesiredPropertiesPatch.ts", {
    ...clientEnv(hub),
    MODULE_CONNECTION_STRING: moduleConnectionString(hub, DEVICE, MODULE),
  });
}

const fault = (action: string, body: unknown = {}) =>
  rawRequest("POST", `${FAULTS}/${action}`, {
    authorization: policyToken(hub, "iothubowner"),
    body: JSON.stringify(body),
  });
const setDesired = (desired: Record<string, string | number>) =>
  hub.core.twins.patch(DEVICE, MODULE, { properties: { desired } }, "*");
const count = (text: string, pattern: RegExp) => (text.match(new RegExp(pattern.source, "g")) ?? []).length;
const connects = (code: number) =>
  lines.filter((l) => l.startsWith(`MQTT CONNECT ${DEVICE}/${MODULE} ${code} `)).length;

it("catches up after a dropped connection and after refused reconnects, missing no patch", async () => {
  const receiver = startReceiver();
  try {
    const printed = () => receiver.output;
    await receiver.waitForOutput(/Waiting for desired property patches/);

    // Dropped: a patch made before the SDK is back in reaches it through the catch-up read.
    let accepted = connects(0);
    expect((await fault("drop")).status).toBe(204);
    await setDesired({ afterDrop: 1 });
    await eventually(() => connects(0) > accepted, "the receiver to reconnect", 20_000);
    await eventually(() => /"afterDrop": 1/.test(receiver.stdout), `afterDrop printed (${printed()})`, 20_000);

    // Refused for 3 s (CONNACK 3): two patches land meanwhile; once it is let in again it prints the whole state.
    accepted = connects(0);
    const caughtUpBefore = count(receiver.stdout, /Desired properties caught up/);
    expect((await fault("refuse-reconnects", { seconds: 3 })).status).toBe(200);
    await setDesired({ telemetryInterval: 300 });
    await setDesired({ mode: "eco" });
    await eventually(() => connects(3) > 0, "a refused reconnect", 20_000);
    await eventually(() => connects(0) > accepted, "the receiver to get in after the period", 30_000);
    // The heading and the state it prints are two writes: wait for the state's closing brace too.
    const caughtUp = () => receiver.stdout.slice(receiver.stdout.lastIndexOf("Desired properties caught up"));
    await eventually(
      () => count(receiver.stdout, /Desired properties caught up/) > caughtUpBefore && /\n\}\n/.test(caughtUp()),
      `the catch-up (${printed()})`,
      20_000,
    );
    const tail = caughtUp();
    expect(tail).toMatch(/"telemetryInterval": 300/);
    expect(tail).toMatch(/"mode": "eco"/);

    // Live again: the next patch arrives as a patch, and every desired $version was printed exactly once.
    await setDesired({ telemetryInterval: 42 });
    await eventually(() => /"telemetryInterval": 42/.test(receiver.stdout), `the live patch (${printed()})`, 20_000);
    const finalVersion = twinOf(hub, DEVICE, MODULE).properties.desired.$version as number;
    const versions = [...receiver.stdout.matchAll(/"\$version": (\d+)\n/g)].map((m) => Number(m[1]));
    expect(versions[versions.length - 1]).toBe(finalVersion);
    expect(new Set(versions).size).toBe(versions.length);
    // What it reported back shows it applied the last state.
    await eventually(() => twinOf(hub, DEVICE, MODULE).properties.reported.telemetryInterval === 42, "reported 42");
    expect(twinOf(hub, DEVICE, MODULE).properties.reported).toMatchObject({ afterDrop: 1, mode: "eco" });
  } finally {
    await receiver.stop();
  }
}, 90_000);
