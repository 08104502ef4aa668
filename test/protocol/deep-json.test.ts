/**
 * JSON nested deeper than the hub handles is refused on its raw text, with the hub's 400 and error body, wherever it
 * comes from; a device that answers a method with such JSON fails the call at once (502, the SDK's
 * BadDeviceResponseError) instead of leaving the caller waiting. The SDKs' own clients are served afterwards.
 */
import { Client as ServiceClient } from "azure-iothub";
import type * as mqtt from "mqtt-packet";
import { MAX_JSON_DEPTH } from "../localhub";
import { ProtocolHub, connectAs, createDevice, ownerToken, rest, startProtocolHub } from "../helpers/raw";
import { expectSdkClientsServed, redirectSdks } from "../helpers/sdk-probe";

const nested = (levels: number, leaf = "1") => "[".repeat(levels) + leaf + "]".repeat(levels);
const statusOf = (err: unknown) => (err as { response?: { statusCode?: number } })?.response?.statusCode;

let hub: ProtocolHub;
beforeAll(async () => {
  hub = await startProtocolHub();
  redirectSdks(hub.hub);
});
afterAll(() => hub.hub.stop());

it("a method payload nested 10,000 levels gets the hub's 400, not a 500, and clients are still served", async () => {
  const body = `{"methodName":"m","responseTimeoutInSeconds":5,"payload":${nested(10_000)}}`;
  const response = await rest(hub.hub, "POST", `/twins/${hub.probe.deviceId}/methods`, {
    token: ownerToken(hub.hub),
    body,
  });
  expect(response.status).toBe(400);
  expect(response.headers["iothub-errorcode"]).toBe("ArgumentInvalid");
  expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ArgumentInvalid;.*nested deeper than/);
  await expectSdkClientsServed(hub.hub);
});

it.each([
  ["a twin PATCH", "PATCH", "/twins/probe", (deep: string) => `{"properties":{"desired":{"a":${deep}}}}`],
  ["a device PUT", "PUT", "/devices/deep", (deep: string) => `{"deviceId":"deep","x":${deep}}`],
  ["a query", "POST", "/devices/query", (deep: string) => `{"query":"SELECT * FROM devices","x":${deep}}`],
])("%s body nested 100,000 levels gets the hub's 400", async (_what, method, path, bodyOf) => {
  const response = await rest(hub.hub, method, path, { token: ownerToken(hub.hub), body: bodyOf(nested(100_000)) });
  expect(response.status).toBe(400);
  expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ArgumentInvalid;/);
  await expectSdkClientsServed(hub.hub);
});

it("a body nested exactly the limit is parsed as usual", async () => {
  // A device PUT ignores fields it does not know: the depth is the only thing that could refuse it.
  const body = `{"deviceId":"at-limit","x":${nested(MAX_JSON_DEPTH - 1)}}`;
  const response = await rest(hub.hub, "PUT", "/devices/at-limit", { token: ownerToken(hub.hub), body });
  expect(response.status).toBe(200);
});

it("a reported patch nested 100,000 levels over MQTT gets the twin error, and the device goes on", async () => {
  const mallory = await createDevice(hub.hub, "mallory-twin");
  const { client } = await connectAs(hub.hub, mallory.deviceId, mallory.token());
  client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/twin/res/#", qos: 0 }] });
  await client.next("suback");
  const payload = `{"a":${nested(100_000)}}`;
  client.send({ cmd: "publish", topic: "$iothub/twin/PATCH/properties/reported/?$rid=7", payload, qos: 0 } as never);
  const answer = await client.next<mqtt.IPublishPacket>("publish");
  expect(answer.topic).toBe("$iothub/twin/res/400/?$rid=7");
  expect(JSON.parse(answer.payload.toString()).errorCode).toBe(400004);
  client.end();
  await expectSdkClientsServed(hub.hub);
});

describe.each([
  ["nested 100,000 levels (larger than 128 KB)", 100_000],
  ["nested 50,000 levels (within 128 KB)", 50_000],
])("a device answering a method with JSON %s", (_what, levels) => {
  it("fails the call at once with 502 BadDeviceResponse, long before the response timeout", async () => {
    const mallory = await createDevice(hub.hub, `mallory-${levels}`);
    const { client } = await connectAs(hub.hub, mallory.deviceId, mallory.token());
    client.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "$iothub/methods/POST/#", qos: 0 }] });
    await client.next("suback");
    const service = ServiceClient.fromConnectionString(hub.hub.connectionString);
    try {
      // 300 s: only an answer from the hub, not a timeout, can end this call within the test's 30 s.
      const call = service
        .invokeDeviceMethod(mallory.deviceId, { methodName: "m", payload: null, responseTimeoutInSeconds: 300 })
        .catch((err: unknown) => err);
      const request = await client.next<mqtt.IPublishPacket>("publish");
      const rid = /\$rid=(\w+)/.exec(request.topic)![1];
      client.send({
        cmd: "publish",
        topic: `$iothub/methods/res/200/?$rid=${rid}`,
        payload: nested(levels),
        qos: 0,
      } as never);
      const err = await call;
      expect(statusOf(err)).toBe(502);
      expect((err as Error).name).toBe("BadDeviceResponseError");
    } finally {
      client.end();
      await service.close().catch(() => {});
    }
    await expectSdkClientsServed(hub.hub);
  });
});
