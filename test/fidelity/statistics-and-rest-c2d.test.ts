/**
 * Endpoints the SDKs and tools call beyond the registry and twins:
 * - GET /statistics/devices and /statistics/service, in the shapes of the recorded real-hub sessions in
 *   Azure/azure-sdk-for-net `sdk/iot/Azure.IoT.Hub.Service/tests/SessionRecords/StatisticsClientTests/`
 *   (StatisticsClient_Device_SuccessfulResponse.json, StatisticsClient_Service_SuccessfulResponse.json);
 * - POST /devices/{id}/messages/deviceBound, a cloud-to-device message over HTTPS as azure-sdk-for-rust
 *   (`sdk/iot_hub`, cloud-to-device message operation) sends it: the body as is, application properties as
 *   `iothub-app-{name}` headers. It lands in the same durable queue as an AMQP send;
 * - the data-plane api-version Azure IoT Explorer sends (2020-09-30, its `HUB_DATA_PLANE_API_VERSION` in
 *   Azure/azure-iot-explorer src/app/constants/apiConstants.ts).
 */
import { Registry } from "azure-iothub";
import { eventually, moduleConnectionString, policyToken, rawRequest } from "../helpers/hub";
import { completingDevice } from "../helpers/messages";
import { MessagingHub, startMessagingHub } from "./messaging-hub";

let running: MessagingHub;
let registry: Registry;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  running = await startMessagingHub();
  registry = Registry.fromConnectionString(running.hub.connectionString);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(() => running.stop());

async function openDevice(deviceId: string) {
  const { client, received } = completingDevice(moduleConnectionString(running.hub, deviceId));
  closers.push(() => client.close());
  await client.open();
  return received;
}

const sendOverRest = (deviceId: string, body: string, headers: Record<string, string>, apiVersion = "2020-09-30") =>
  rawRequest("POST", `/devices/${encodeURIComponent(deviceId)}/messages/deviceBound?api-version=${apiVersion}`, {
    authorization: policyToken(running.hub, "service"),
    body,
    headers: { "Content-Type": "application/octet-stream", ...headers },
  });

it("GET /statistics/devices counts the registry's devices, enabled and disabled", async () => {
  await registry.create({ deviceId: "stats-a" });
  const b = (await registry.create({ deviceId: "stats-b" })).responseBody;
  await registry.update({ ...b, status: "disabled" });
  await registry.addModule({ deviceId: "stats-a", moduleId: "m" }); // modules are not devices
  const { responseBody } = await registry.getRegistryStatistics();
  const devices = [...running.hub.core.identities.allDevices()];
  expect(responseBody).toEqual({
    totalDeviceCount: devices.length,
    enabledDeviceCount: devices.filter((d) => d.status !== "disabled").length,
    disabledDeviceCount: 1,
  });
});

it("GET /statistics/service counts the devices connected now", async () => {
  const read = async () => {
    const response = await rawRequest("GET", "/statistics/service?api-version=2021-04-12", {
      authorization: policyToken(running.hub, "service"),
    });
    expect(response.status).toBe(200);
    return JSON.parse(response.body);
  };
  await registry.create({ deviceId: "stats-online" });
  expect(await read()).toEqual({ connectedDeviceCount: 0 });
  await openDevice("stats-online");
  expect(await read()).toEqual({ connectedDeviceCount: 1 });
});

it("a message POSTed to /devices/{id}/messages/deviceBound reaches the device with its properties, once", async () => {
  await registry.create({ deviceId: "rest-c2d" });
  const received = await openDevice("rest-c2d");
  const answer = await sendOverRest("rest-c2d", "hello over https", {
    "iothub-messageid": "m-1",
    "iothub-correlationid": "c-1",
    "iothub-app-colour": "blue",
  });
  expect(answer.status).toBe(204);
  expect(answer.headers["x-ms-request-id"]).toBeDefined();
  await eventually(() => received.length === 1, "the message on the device");
  const [message] = received;
  expect(message.data.toString()).toBe("hello over https");
  expect(message.messageId).toBe("m-1");
  expect(message.correlationId).toBe("c-1");
  expect(message.properties.getValue("colour")).toBe("blue");
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(received).toHaveLength(1);
});

it("a REST message to a device that is away waits in its durable queue, as an AMQP send does", async () => {
  await registry.create({ deviceId: "rest-away" });
  expect((await sendOverRest("rest-away", "while away", { "iothub-messageid": "away-1" })).status).toBe(204);
  expect(running.hub.core.cloudToDevice.pendingFor("rest-away").map((m) => m.messageId)).toEqual(["away-1"]);
  const received = await openDevice("rest-away");
  await eventually(() => received.length === 1, "the queued message");
  expect(received[0].data.toString()).toBe("while away");
});

it("a REST message to an unknown device answers 404 DeviceNotFound", async () => {
  const answer = await sendOverRest("nobody-here", "x", {});
  expect(answer.status).toBe(404);
  expect(answer.headers["iothub-errorcode"]).toBe("DeviceNotFound");
});

it("accepts the api-versions today's tools send, and refuses an unknown one with 400 InvalidProtocolVersion", async () => {
  for (const version of ["2020-09-30", "2021-04-12", "2020-03-13"]) {
    const answer = await rawRequest("GET", `/devices/stats-a?api-version=${version}`, {
      authorization: policyToken(running.hub, "iothubowner"),
    });
    expect([version, answer.status]).toEqual([version, 200]);
  }
  const unknown = await rawRequest("GET", "/devices/stats-a?api-version=1999-01-01", {
    authorization: policyToken(running.hub, "iothubowner"),
  });
  expect(unknown.status).toBe(400);
  expect(unknown.headers["iothub-errorcode"]).toBe("InvalidProtocolVersion");
});
