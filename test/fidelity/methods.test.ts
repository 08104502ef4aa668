/** Direct methods: azure-iothub's Client.invokeDeviceMethod to device and module clients over Mqtt and MqttWs. */
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Client as DeviceClient, DeviceMethodRequest, DeviceMethodResponse, ModuleClient } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub } from "../helpers/hub";

let hub: Hub;
let service: ServiceClient;
const clients: { close(): Promise<unknown> }[] = [];
const statusOf = (err: any): number | undefined => err?.response?.statusCode;

beforeAll(async () => {
  hub = await startTestHub();
  const registry = Registry.fromConnectionString(hub.connectionString);
  for (const deviceId of ["thermostat", "edge-box", "asleep"]) await registry.create({ deviceId });
  for (const moduleId of ["mod", "sibling"]) await registry.addModule({ deviceId: "edge-box", moduleId });
  service = ServiceClient.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(async () => {
  await service.close().catch(() => {});
  await hub.stop();
});

/** Opens a client whose method `echo` answers 200 with the request's payload, and `slow` never answers. */
async function openEchoing(deviceId: string, moduleId?: string, transport: unknown = Mqtt) {
  const connectionString = moduleConnectionString(hub, deviceId, moduleId);
  const client = moduleId
    ? ModuleClient.fromConnectionString(connectionString, transport)
    : DeviceClient.fromConnectionString(connectionString, transport);
  clients.push(client);
  const calls: string[] = [];
  await client.open();
  // The same handlers, registered the way each client type names it.
  const on = (name: string, handler: (request: DeviceMethodRequest, response: DeviceMethodResponse) => void) =>
    client instanceof ModuleClient
      ? client.onMethod(name, (request, response) => handler(request!, response!))
      : client.onDeviceMethod(name, handler);
  on("echo", (request, response) => {
    calls.push(request.methodName);
    void response.send(200, request.payload);
  });
  on("slow", (request) => calls.push(request.methodName));
  // The SDK subscribes lazily; the hub may see the SUBSCRIBE a moment after onDeviceMethod returns.
  await eventually(
    () =>
      hub.core.sessions
        .subscriptions(moduleId ? `${deviceId}/${moduleId}` : deviceId)
        ?.includes("$iothub/methods/POST/#") === true,
    "the method subscription",
  );
  return { client, calls };
}

const echo = (payload: unknown, extra: object = {}) => ({
  methodName: "echo",
  payload,
  responseTimeoutInSeconds: 5,
  ...extra,
});

describe.each([
  ["Mqtt", Mqtt],
  ["MqttWs", MqttWs],
])("over %s", (_name, transport) => {
  it("round-trips every kind of JSON payload to a device and back with the device's status", async () => {
    await openEchoing("thermostat", undefined, transport);
    for (const payload of [null, "", "text", 42, true, { a: { b: [1, 2] } }, [1, "two", null]]) {
      const { result } = await service.invokeDeviceMethod("thermostat", echo(payload));
      expect(result).toEqual({ status: 200, payload });
    }
  });

  it("calls a module's method on that module only", async () => {
    const mod = await openEchoing("edge-box", "mod", transport);
    const sibling = await openEchoing("edge-box", "sibling", transport);
    const { result } = await service.invokeDeviceMethod("edge-box", "mod", echo({ for: "mod" }));
    expect(result).toEqual({ status: 200, payload: { for: "mod" } });
    expect(mod.calls).toEqual(["echo"]);
    expect(sibling.calls).toEqual([]);
  });
});

it("answers 404 with error code 404103 when the device is not connected and connectTimeout is 0", async () => {
  const err = await service.invokeDeviceMethod("asleep", echo(1)).catch((e) => e);
  expect(statusOf(err)).toBe(404);
  expect(err.responseBody).toContain("404103");
  expect(err.response.headers["iothub-errorcode"]).toBe("DeviceNotOnline");
});

it("waits up to connectTimeoutInSeconds for the device to connect, then delivers the call", async () => {
  const call = service.invokeDeviceMethod("asleep", echo("late", { connectTimeoutInSeconds: 10 }));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await openEchoing("asleep");
  expect((await call).result).toEqual({ status: 200, payload: "late" });
});

it("answers 504 with error code 504101 when the device does not answer within responseTimeoutInSeconds", async () => {
  const { calls } = await openEchoing("thermostat");
  const err = await service
    .invokeDeviceMethod("thermostat", { methodName: "slow", payload: null, responseTimeoutInSeconds: 5 })
    .catch((e) => e);
  expect(calls).toEqual(["slow"]);
  expect(statusOf(err)).toBe(504);
  expect(err.name).toBe("GatewayTimeoutError");
  expect(err.responseBody).toContain("504101");
}, 15_000);

it("refuses timeouts outside 5-300 s (response) and 0-300 s (connect) with 400", async () => {
  await openEchoing("thermostat");
  for (const extra of [
    { responseTimeoutInSeconds: 4 },
    { responseTimeoutInSeconds: 301 },
    { connectTimeoutInSeconds: 301 },
  ]) {
    const err = await service.invokeDeviceMethod("thermostat", echo(1, extra)).catch((e) => e);
    expect(statusOf(err)).toBe(400);
  }
});

it("needs ServiceConnect: a registryRead policy gets 401, the service policy is served", async () => {
  await openEchoing("thermostat");
  const withPolicy = (name: string) =>
    ServiceClient.fromConnectionString(
      `HostName=localhost;SharedAccessKeyName=${name};SharedAccessKey=${hub.core.policies.find(name)!.primaryKey}`,
    );
  const reader = withPolicy("registryRead");
  const err = await reader.invokeDeviceMethod("thermostat", echo(1)).catch((e) => e);
  expect(statusOf(err)).toBe(401);
  const serviceOnly = withPolicy("service");
  expect((await serviceOnly.invokeDeviceMethod("thermostat", echo(2))).result).toEqual({ status: 200, payload: 2 });
  await Promise.all([reader.close(), serviceOnly.close()]).catch(() => {});
});

it("still reaches a device after it renewed its SAS token (a reconnect with a new token)", async () => {
  const { client } = await openEchoing("thermostat");
  const connects = () => hub.core.identities.find("thermostat")!.connectionStateUpdatedTime;
  const before = connects();
  // Tokens valid for 4 s, renewed 2 s before they expire: the SDK reconnects with a new token every 2 s.
  await (client as DeviceClient).setOptions({
    tokenRenewal: { tokenValidTimeInSeconds: 4, tokenRenewalMarginInSeconds: 2 },
  });
  await eventually(() => connects() !== before, "the renewal's reconnect", 10_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect((await service.invokeDeviceMethod("thermostat", echo("after renewal"))).result).toEqual({
    status: 200,
    payload: "after renewal",
  });
}, 20_000);
