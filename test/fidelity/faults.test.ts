/**
 * Faults on demand through the admin API (`/$localhub/faults/...`, iothubowner only), against the unmodified device
 * SDK: a dropped connection, refused reconnects (CONNACK 3), latency on messages, unanswered MQTT pings.
 */
import { Client as ServiceClient, Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, policyToken, rawRequest, startTestHub, tempDir } from "../helpers/hub";

const DEVICE = "faultyDevice";
const MODULE = "faultyModule";
const KEY = `${DEVICE}/${MODULE}`;
const PATH = `/$localhub/faults/devices/${DEVICE}/modules/${MODULE}`;
let hub: Hub;
let service: ServiceClient;
const lines: string[] = [];
const clients: ModuleClient[] = [];

beforeAll(async () => {
  hub = await startTestHub(tempDir(), { log: (line) => lines.push(line) });
  const registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: DEVICE });
  await registry.addModule({ deviceId: DEVICE, moduleId: MODULE });
  service = ServiceClient.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await admin("DELETE", PATH);
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(async () => {
  await service.close().catch(() => {});
  await hub.stop();
});

function admin(method: string, path: string, body?: unknown, policy = "iothubowner") {
  return rawRequest(method, path, {
    authorization: policyToken(hub, policy),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

const connects = (code: number) => lines.filter((l) => l.startsWith(`MQTT CONNECT ${KEY} ${code} `)).length;

async function openModule(options: { keepalive?: number } = {}): Promise<ModuleClient> {
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, DEVICE, MODULE), Mqtt);
  clients.push(client);
  if (options.keepalive) await client.setOptions({ keepalive: options.keepalive });
  await client.open();
  client.onMethod("echo", (request, response) => void response!.send(200, request!.payload));
  await eventually(() => hub.core.sessions.subscriptions(KEY)?.includes("$iothub/methods/POST/#") === true, "methods");
  return client;
}

async function echoMs(): Promise<number> {
  const started = Date.now();
  await service.invokeDeviceMethod(DEVICE, MODULE, { methodName: "echo", payload: 1, responseTimeoutInSeconds: 30 });
  return Date.now() - started;
}

it("takes only an iothubowner token, names bad input, and 404s an identity that does not exist", async () => {
  expect((await admin("GET", "/$localhub/faults", undefined, "service")).status).toBe(401);
  expect((await rawRequest("GET", "/$localhub/faults")).status).toBe(401);
  expect(JSON.parse((await admin("GET", "/$localhub/faults")).body)).toEqual({ faults: [] });
  const bad = await admin("POST", `${PATH}/refuse-reconnects`, { seconds: "ten" });
  expect(bad.status).toBe(400);
  expect(bad.body).toContain('refuse-reconnects needs \\"seconds\\" as a number');
  expect((await admin("POST", `${PATH}/latency`, { milliseconds: 10 ** 9 })).status).toBe(400);
  expect((await admin("POST", `/$localhub/faults/devices/nobody/drop`)).status).toBe(404);
  expect((await admin("POST", `${PATH}/explode`)).status).toBe(404);
  expect((await admin("POST", `${PATH}/drop`, { padding: "x".repeat(8192) })).status).toBe(413);
});

it("drop ends the connection now and the SDK reconnects by itself", async () => {
  await openModule();
  const before = connects(0);
  expect((await admin("POST", `${PATH}/drop`)).status).toBe(204);
  expect(lines).toContain(`FAULT ${KEY}: connection dropped on demand`);
  await eventually(() => connects(0) === before + 1, "the SDK to reconnect", 20_000);
  expect(await echoMs()).toBeLessThan(5000);
});

it("refuse-reconnects answers CONNECT with 3 (server unavailable) for N seconds; the SDK keeps trying and gets in", async () => {
  await openModule();
  const before = connects(0);
  const res = await admin("POST", `${PATH}/refuse-reconnects`, { seconds: 2 });
  expect(res.status).toBe(200);
  expect(JSON.parse(res.body)).toMatchObject({ identity: KEY, refuseReconnectsSecondsLeft: 2 });
  await eventually(() => connects(3) >= 1, "a refused CONNECT", 10_000);
  expect(connects(0)).toBe(before);
  await eventually(() => connects(0) === before + 1, "the SDK to get in after the period", 30_000);
  expect(await echoMs()).toBeLessThan(5000);
}, 40_000);

it("latency delays the identity's messages both ways, until cleared", async () => {
  await openModule();
  expect((await admin("POST", `${PATH}/latency`, { milliseconds: 400 })).status).toBe(200);
  expect(JSON.parse((await admin("GET", "/$localhub/faults")).body).faults).toEqual([
    { identity: KEY, latencyMilliseconds: 400, latencySecondsLeft: null },
  ]);
  // The call goes out 400 ms late and its answer comes in 400 ms late.
  expect(await echoMs()).toBeGreaterThanOrEqual(800);
  expect((await admin("DELETE", PATH)).status).toBe(204);
  expect(await echoMs()).toBeLessThan(400);
});

it("ignore-pings leaves PINGREQ unanswered: the SDK gives the connection up and reconnects", async () => {
  await openModule({ keepalive: 1 });
  const before = connects(0);
  expect((await admin("POST", `${PATH}/ignore-pings`, { seconds: 3 })).status).toBe(200);
  await eventually(() => lines.includes(`FAULT ${KEY}: PINGREQ left unanswered`), "an unanswered ping", 10_000);
  await eventually(() => connects(0) > before, "the SDK to reconnect", 30_000);
}, 40_000);
