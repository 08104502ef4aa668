/**
 * Direct methods to device and module clients over azure-iot-device-amqp (`Amqp` and `AmqpWs`), unmodified, called
 * by azure-iothub's Client.invokeDeviceMethod: the same answers, statuses, timeouts and 404 as over MQTT.
 */
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Client as DeviceClient, DeviceMethodRequest, DeviceMethodResponse, ModuleClient } from "azure-iot-device";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub } from "../helpers/hub";

let hub: Hub;
let service: ServiceClient;
const logged: string[] = [];
const clients: { close(): Promise<unknown> }[] = [];
const statusOf = (err: any): number | undefined => err?.response?.statusCode;

beforeAll(async () => {
  hub = await startTestHub(undefined, { log: (line) => logged.push(line) });
  const registry = Registry.fromConnectionString(hub.connectionString);
  for (const deviceId of ["pump", "gateway", "leaving", "compared", "both"]) await registry.create({ deviceId });
  for (const moduleId of ["mod", "sibling"]) await registry.addModule({ deviceId: "gateway", moduleId });
  service = ServiceClient.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(async () => {
  await service.close().catch(() => {});
  await hub.stop();
});

/** Opens a client whose `echo` answers with the payload and the status it names, and whose `slow` never answers. */
async function openEchoing(deviceId: string, moduleId: string | undefined, transport: unknown) {
  const connectionString = moduleConnectionString(hub, deviceId, moduleId);
  const client = moduleId
    ? ModuleClient.fromConnectionString(connectionString, transport)
    : DeviceClient.fromConnectionString(connectionString, transport);
  clients.push(client);
  const calls: string[] = [];
  await client.open();
  const on = (name: string, handler: (request: DeviceMethodRequest, response: DeviceMethodResponse) => void) =>
    client instanceof ModuleClient
      ? client.onMethod(name, (request, response) => handler(request!, response!))
      : client.onDeviceMethod(name, handler);
  on("echo", (request, response) => {
    calls.push(request.methodName);
    const status = (request.payload as { status?: number } | null)?.status ?? 200;
    void response.send(status, request.payload);
  });
  on("slow", (request) => calls.push(request.methodName));
  // The SDK attaches its method links lazily: calls go once the hub has the link it sends them on.
  const key = moduleId ? `${deviceId}/${moduleId}` : deviceId;
  if (transport === Mqtt) {
    const subscribed = () => hub.core.sessions.subscriptions(key)?.includes("$iothub/methods/POST/#") === true;
    await eventually(subscribed, "the method subscription");
  } else await eventually(() => lastMethodsLine(key) === `AMQP METHODS ${key} takes calls`, "the method links");
  return { client, calls };
}

/** The hub's last word on whether the identity takes calls over AMQP. */
function lastMethodsLine(key: string): string | undefined {
  return logged.filter((line) => line.startsWith(`AMQP METHODS ${key} `)).pop();
}

const gone = (key: string) =>
  eventually(() => lastMethodsLine(key) === `AMQP METHODS ${key} takes no calls`, "the hub noticing the disconnect");

const echo = (payload: unknown, extra: object = {}) => ({
  methodName: "echo",
  payload,
  responseTimeoutInSeconds: 5,
  ...extra,
});

describe.each([
  ["Amqp", Amqp],
  ["AmqpWs", AmqpWs],
])("over %s", (_name, transport) => {
  it("round-trips every kind of JSON payload to a device and back with the device's status", async () => {
    await openEchoing("pump", undefined, transport);
    for (const payload of [null, "", "text", 42, true, { a: { b: [1, 2] } }, [1, "two", null]]) {
      const { result } = await service.invokeDeviceMethod("pump", echo(payload));
      expect(result).toEqual({ status: 200, payload });
    }
    const { result } = await service.invokeDeviceMethod("pump", echo({ status: 404 }));
    expect(result).toEqual({ status: 404, payload: { status: 404 } });
  });

  it("calls a module's method on that module only", async () => {
    const mod = await openEchoing("gateway", "mod", transport);
    const sibling = await openEchoing("gateway", "sibling", transport);
    const { result } = await service.invokeDeviceMethod("gateway", "mod", echo({ for: "mod" }));
    expect(result).toEqual({ status: 200, payload: { for: "mod" } });
    expect(mod.calls).toEqual(["echo"]);
    expect(sibling.calls).toEqual([]);
  });

  it("answers 404 with error code 404103 once the device has disconnected, as over MQTT", async () => {
    const { client } = await openEchoing("leaving", undefined, transport);
    expect((await service.invokeDeviceMethod("leaving", echo(1))).result).toEqual({ status: 200, payload: 1 });
    await client.close();
    await gone("leaving");
    const err = await service.invokeDeviceMethod("leaving", echo(2)).catch((e) => e);
    expect(statusOf(err)).toBe(404);
    expect(err.responseBody).toContain("404103");
    expect(err.response.headers["iothub-errorcode"]).toBe("DeviceNotOnline");
  });
});

it("gives a method the same error over AMQP and MQTT when the device has gone away", async () => {
  const errorOf = async (transport: unknown) => {
    const { client } = await openEchoing("compared", undefined, transport);
    await client.close();
    if (transport === Amqp) await gone("compared");
    else
      await eventually(() => logged.some((line) => line.startsWith("MQTT DISCONNECT compared")), "the MQTT disconnect");
    const err = await service.invokeDeviceMethod("compared", echo(1)).catch((e) => e);
    return { name: err.name, status: statusOf(err), code: err.response.headers["iothub-errorcode"] };
  };
  const overMqtt = await errorOf(Mqtt);
  expect(await errorOf(Amqp)).toEqual(overMqtt);
  expect(overMqtt.status).toBe(404);
});

it("waits up to connectTimeoutInSeconds for an AMQP device to attach its method links, then delivers the call", async () => {
  const call = service.invokeDeviceMethod("leaving", echo("late", { connectTimeoutInSeconds: 10 }));
  await new Promise((resolve) => setTimeout(resolve, 500));
  await openEchoing("leaving", undefined, Amqp);
  expect((await call).result).toEqual({ status: 200, payload: "late" });
});

it("answers 504 with error code 504101 when an AMQP device does not answer within responseTimeoutInSeconds", async () => {
  const { calls } = await openEchoing("pump", undefined, Amqp);
  const err = await service
    .invokeDeviceMethod("pump", { methodName: "slow", payload: null, responseTimeoutInSeconds: 5 })
    .catch((e) => e);
  expect(calls).toEqual(["slow"]);
  expect(statusOf(err)).toBe(504);
  expect(err.name).toBe("GatewayTimeoutError");
  expect(err.responseBody).toContain("504101");
}, 15_000);

it("still reaches an AMQP device after its SAS token was renewed on the open connection (CBS put-token)", async () => {
  const { client } = await openEchoing("pump", undefined, Amqp);
  const renewals = () => logged.filter((line) => /AMQP CBS .* put-token pump for /.test(line)).length;
  const before = renewals();
  // Tokens valid for 2 s, renewed 1 s before they expire: by the fourth renewal the first of them has expired.
  await (client as DeviceClient).setOptions({
    tokenRenewal: { tokenValidTimeInSeconds: 2, tokenRenewalMarginInSeconds: 1 },
  });
  await eventually(() => renewals() >= before + 4, "four renewals", 15_000);
  expect((await service.invokeDeviceMethod("pump", echo("after renewal"))).result).toEqual({
    status: 200,
    payload: "after renewal",
  });
}, 25_000);

it("still reaches a device over AMQP after the same device's MQTT connection ends", async () => {
  // The hub keeps a device's MQTT and AMQP connections side by side; the end of one leaves the other reachable.
  const overAmqp = await openEchoing("both", undefined, Amqp);
  const overMqtt = await openEchoing("both", undefined, Mqtt);
  await overMqtt.client.close();
  await eventually(() => logged.some((line) => line.startsWith("MQTT DISCONNECT both")), "the MQTT disconnect");
  const { result } = await service.invokeDeviceMethod("both", echo("still here"));
  expect(result).toEqual({ status: 200, payload: "still here" });
  expect(overAmqp.calls).toContain("echo");
});
