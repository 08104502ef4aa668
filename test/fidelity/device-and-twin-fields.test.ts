/**
 * The fields and headers a device, a module and a twin carry on Azure, read with the real service SDK. Facts from the
 * recorded real-hub sessions in Azure/azure-sdk-for-net `sdk/iot/Azure.IoT.Hub.Service/tests/SessionRecords/`:
 * DevicesClient_DeviceTwinLifecycle.json (capabilities on device twins, ETag header on device answers only, a
 * generationId in decimal digits, x-ms-request-id), ModulesClient_DeviceTwinLifecycle.json (managedBy null, no ETag on
 * modules or twins), DevicesClient_UpdateDevice_EtagDoesNotMatch.json (statusUpdatedTime "never" until the status
 * changes; `Tracking ID:<request id without dashes>-G:<n>-TimeStamp:<MM/dd/yyyy HH:mm:ss>`) and
 * ModulesClient_Query_GetTwins.json (x-ms-item-type "Twin").
 */
import { Registry } from "azure-iothub";
import type { Hub } from "../localhub";
import { startTestHub } from "../helpers/hub";

const NEVER = "0001-01-01T00:00:00Z";
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let hub: Hub;
let registry: Registry;

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "f-dev" });
  await registry.create({ deviceId: "f-edge", capabilities: { iotEdge: true } });
  await registry.addModule({ deviceId: "f-dev", moduleId: "m" });
});
afterAll(() => hub.stop());

it("every device twin carries capabilities.iotEdge, on GET and in queries", async () => {
  expect(((await registry.getTwin("f-dev")).responseBody as any).capabilities).toEqual({ iotEdge: false });
  expect(((await registry.getTwin("f-edge")).responseBody as any).capabilities).toEqual({ iotEdge: true });
  const { result } = await registry
    .createQuery("SELECT * FROM devices WHERE capabilities.iotEdge = false")
    .nextAsTwin();
  expect(result.map((twin) => twin.deviceId)).toEqual(["f-dev"]);
  const edge = await registry.createQuery("SELECT * FROM devices WHERE capabilities.iotEdge = true").next();
  expect((edge.result as any[]).map((twin) => [twin.deviceId, twin.capabilities])).toEqual([
    ["f-edge", { iotEdge: true }],
  ]);
});

it("statusUpdatedTime and the twin's statusUpdateTime stay 0001-01-01T00:00:00Z until the status changes", async () => {
  await registry.create({ deviceId: "f-status" });
  const created = (await registry.get("f-status")).responseBody;
  expect(created.statusUpdatedTime).toBe(NEVER);
  expect(((await registry.getTwin("f-status")).responseBody as any).statusUpdateTime).toBe(NEVER);
  const renamed = (await registry.update({ ...created, statusReason: "same status" })).responseBody;
  expect(renamed.statusUpdatedTime).toBe(NEVER);
  const disabled = (await registry.update({ ...renamed, status: "disabled" })).responseBody;
  expect(disabled.statusUpdatedTime).not.toBe(NEVER);
  expect(Date.now() - Date.parse(disabled.statusUpdatedTime!)).toBeLessThan(60_000);
  expect(((await registry.getTwin("f-status")).responseBody as any).statusUpdateTime).toBe(disabled.statusUpdatedTime);
});

it("a module nobody manages has managedBy null", async () => {
  expect((await registry.getModule("f-dev", "m")).responseBody.managedBy).toBeNull();
});

it("generationId is decimal digits, the creation time in .NET ticks", async () => {
  const { generationId } = (await registry.get("f-dev")).responseBody;
  expect(generationId).toMatch(/^\d{18}$/);
  const ticksNow = BigInt(Date.now() + 62_135_596_800_000) * 10_000n;
  expect(ticksNow - BigInt(generationId!)).toBeLessThan(600n * 10_000_000n); // made in the last ten minutes
  expect((await registry.getModule("f-dev", "m")).responseBody.generationId).toMatch(/^\d{18}$/);
});

it("each twin's etag counts its own writes from AAAAAAAAAAE=", async () => {
  await registry.create({ deviceId: "f-etag-a" });
  await registry.create({ deviceId: "f-etag-b" });
  await registry.updateTwin("f-etag-a", { tags: { n: 1 } }, "*");
  const a = (await registry.updateTwin("f-etag-a", { tags: { n: 2 } }, "*")).responseBody;
  expect(a.etag).toBe("AAAAAAAAAAM=");
  expect((await registry.getTwin("f-etag-b")).responseBody.etag).toBe("AAAAAAAAAAE=");
});

it("answers with an ETag header on device answers only, and x-ms-request-id on every answer", async () => {
  const device = await registry.get("f-dev");
  expect(device.httpResponse.headers.etag).toBe(`"${device.responseBody.etag}"`);
  expect(device.httpResponse.headers["x-ms-request-id"]).toMatch(REQUEST_ID);
  for (const answer of [
    await registry.getModule("f-dev", "m"),
    await registry.getTwin("f-dev"),
    await registry.getModuleTwin("f-dev", "m"),
    await registry.list(),
  ]) {
    expect(answer.httpResponse.headers.etag).toBeUndefined();
    expect(answer.httpResponse.headers["x-ms-request-id"]).toMatch(REQUEST_ID);
  }
  const query = await registry.createQuery("SELECT * FROM devices").next();
  expect(query.message.headers["x-ms-item-type"]).toBe("Twin");
  expect(query.message.headers["x-ms-request-id"]).toMatch(REQUEST_ID);
});

it("an error's ExceptionMessage is Tracking ID:<request id>-G:<n>-TimeStamp:<MM/dd/yyyy HH:mm:ss>", async () => {
  const err = await registry.get("f-missing").catch((e) => e);
  expect(err.name).toBe("DeviceNotFoundError");
  const requestId = err.response.headers["x-ms-request-id"] as string;
  expect(requestId).toMatch(REQUEST_ID);
  const body = JSON.parse(err.responseBody);
  expect(body.Message).toMatch(/^ErrorCode:DeviceNotFound;/);
  expect(body.ExceptionMessage).toMatch(
    new RegExp(
      `^Tracking ID:${requestId.replace(/-/g, "")}-G:\\d+-TimeStamp:\\d\\d/\\d\\d/\\d{4} \\d\\d:\\d\\d:\\d\\d$`,
    ),
  );
});
