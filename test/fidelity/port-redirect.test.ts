/**
 * A hub on unprivileged ports, reached by the real SDKs as localhost:443 and localhost:8883 through port-redirect.cjs:
 * what a normal Linux user gets when the hub cannot bind 443, and what lets each test file run its own hub.
 */
import { Registry } from "azure-iothub";
import { ModuleClient, Twin } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import { Hub, setPortMap, startHub } from "../localhub";
import { copyTestCertificates, moduleConnectionString, tempDir } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
const clients: ModuleClient[] = [];

beforeAll(async () => {
  const dataDir = tempDir();
  copyTestCertificates(dataDir);
  hub = await startHub({ dataDir, httpsPort: 0, mqttPort: 0, inMemory: true });
  setPortMap({ 443: hub.ports.https, 8883: hub.ports.mqtt });
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close().catch(() => {})));
  setPortMap({});
  await hub.stop();
});

/**
 * Listens for desired properties; resolves once the SDK has delivered the initial state (it is then subscribed to
 * patches), with the next patch to come.
 */
function listenForPatch(twin: Twin): Promise<{ patch: Promise<Record<string, unknown>> }> {
  return new Promise((subscribed) => {
    let initial = true;
    const patch = new Promise<Record<string, unknown>>((resolve) =>
      twin.on("properties.desired", (delta: Record<string, unknown>) => {
        if (!initial) return resolve(delta);
        initial = false;
        subscribed({ patch });
      }),
    );
  });
}

test("the hub listens on neither 443 nor 8883", () => {
  expect([hub.ports.https, hub.ports.mqtt]).not.toContain(443);
  expect([hub.ports.https, hub.ports.mqtt]).not.toContain(8883);
  expect(hub.listening.join(" ")).not.toMatch(/:(443|8883)\b/);
});

test("the service SDK creates a device and a module at localhost:443, served by the hub's own port", async () => {
  await registry.create({ deviceId: "redirected" });
  const created = (await registry.addModule({ deviceId: "redirected", moduleId: "m" })).responseBody;
  expect(created).toMatchObject({ deviceId: "redirected", moduleId: "m" });
  // Only this hub has that module: the requests did not land on some other hub on the real port 443.
  expect(hub.core.identities.find("redirected", "m")).toBeDefined();
});

test.each([
  ["MQTT over TLS (localhost:8883)", Mqtt, "mqtt"],
  ["MQTT over WebSockets (localhost:443)", MqttWs, "ws"],
])("a module client over %s receives a desired patch", async (_name, transport, moduleId) => {
  await registry.addModule({ deviceId: "redirected", moduleId });
  const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "redirected", moduleId), transport);
  clients.push(client);
  await client.open();
  const { patch } = await listenForPatch(await client.getTwin());
  await registry.updateModuleTwin("redirected", moduleId, { properties: { desired: { telemetryInterval: 7 } } }, "*");
  expect(await patch).toMatchObject({ telemetryInterval: 7 });
});
