/**
 * The Device Provisioning Service inside the local hub, driven by Microsoft's unmodified SDKs as their samples use
 * them: `azure-iot-provisioning-service` manages enrollments (api-version 2021-10-01), and a device with only the ID
 * scope, `localhost` and its key registers over `azure-iot-provisioning-device-http` (2019-03-31), is assigned to the
 * hub and connects to it. The wire follows Azure's REST reference for DPS (MicrosoftDocs, "Runtime Registration -
 * Register Device", "Individual Enrollment", "Enrollment Group") and the SDKs' sources; derived group keys follow
 * Azure's "How to provision devices using symmetric key enrollment groups".
 */
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { Http as ProvisioningHttp } from "azure-iot-provisioning-device-http";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { createSasToken, setPortMap, type Hub } from "../localhub";
import { rawRequest, startTestHub } from "../helpers/hub";
import { deriveGroupKey, startProvisioningHub, symmetricKeyRegistration } from "../helpers/provisioning";

let hub: Hub;
let service: ProvisioningServiceClient;
beforeAll(async () => ({ hub, service } = await startProvisioningHub()));
afterAll(() => hub.stop());

function register(registrationId: string, key: string) {
  return symmetricKeyRegistration(hub.provisioning.idScope, registrationId, key, new ProvisioningHttp()).register();
}

/** Connects as the registration result says, with the device's own key, and reads its twin. */
async function connectAsAssigned(result: { assignedHub: string; deviceId: string }, key: string) {
  const client = DeviceClient.fromConnectionString(
    `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}`,
    Mqtt,
  );
  try {
    await client.open();
    return (await client.getTwin()).properties.desired;
  } finally {
    await client.close();
  }
}

it("manages an individual enrollment as Azure does: create, read, update with its etag, 412 on a stale one, delete", async () => {
  const created = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "crud-device",
      attestation: { type: "symmetricKey" },
      capabilities: { iotEdge: true },
    } as never)
  ).responseBody;
  expect(created).toMatchObject({
    registrationId: "crud-device",
    provisioningStatus: "enabled",
    capabilities: { iotEdge: true },
    reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: true },
    attestation: { type: "symmetricKey" },
  });
  // Keys left empty are generated: 64 random bytes, base64.
  expect(Buffer.from(created.attestation.symmetricKey!.primaryKey, "base64")).toHaveLength(64);
  expect(typeof created.etag).toBe("string");

  const read = (await service.getIndividualEnrollment("crud-device")).responseBody;
  expect(read).toEqual(created);
  await expect(
    service.createOrUpdateIndividualEnrollment({
      registrationId: "crud-device",
      attestation: { type: "symmetricKey" },
    } as never),
  ).rejects.toMatchObject({ name: "DeviceAlreadyExistsError", response: { statusCode: 409 } });

  const updated = (await service.createOrUpdateIndividualEnrollment({ ...read, provisioningStatus: "disabled" }))
    .responseBody;
  expect(updated.provisioningStatus).toBe("disabled");
  expect(updated.etag).not.toBe(read.etag);
  await expect(service.createOrUpdateIndividualEnrollment(read)).rejects.toMatchObject({
    name: "InvalidEtagError",
    response: { statusCode: 412 },
  });
  await expect(service.deleteIndividualEnrollment("crud-device", read.etag)).rejects.toMatchObject({
    response: { statusCode: 412 },
  });
  await service.deleteIndividualEnrollment("crud-device", updated.etag);
  const missing = await service
    .getIndividualEnrollment("crud-device")
    .catch((err: { response: { statusCode: number }; responseBody: string }) => err);
  expect((missing as { response: { statusCode: number } }).response.statusCode).toBe(404);
  // The DPS's own error shape, not IoT Hub's.
  expect(JSON.parse((missing as { responseBody: string }).responseBody)).toMatchObject({ errorCode: 404201 });
});

it("refuses a service token of a wrong key with 401 and a device of an unknown ID scope with 404", async () => {
  const forged = ProvisioningServiceClient.fromConnectionString(
    hub.provisioning.connectionString.replace(
      /SharedAccessKey=.*/,
      `SharedAccessKey=${Buffer.alloc(32, 1).toString("base64")}`,
    ),
  );
  await expect(forged.getEnrollmentGroup("anything")).rejects.toMatchObject({ name: "UnauthorizedError" });
  const stranger = symmetricKeyRegistration(
    "0ne00000000",
    "nobody",
    Buffer.alloc(32, 2).toString("base64"),
    new ProvisioningHttp(),
  );
  await expect(stranger.register()).rejects.toMatchObject({ response: { statusCode: 404 } });
});

it("provisions an individually enrolled device over Http with its initial twin; it then connects to the hub with its key", async () => {
  const enrollment = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "sensor-http-1",
      deviceId: "thermostat-http-1",
      attestation: { type: "symmetricKey" },
      initialTwin: { tags: { site: "lab" }, properties: { desired: { interval: 30 } } },
    } as never)
  ).responseBody;
  const key = enrollment.attestation.symmetricKey!.primaryKey;

  const result = await register("sensor-http-1", key);
  expect(result).toMatchObject({
    registrationId: "sensor-http-1",
    assignedHub: "localhost",
    deviceId: "thermostat-http-1",
    status: "assigned",
    substatus: "initialAssignment",
  });
  const desired = await connectAsAssigned(result as never, key);
  expect(desired.interval).toBe(30);
  expect(hub.core.twins.json(hub.core.identities.require("thermostat-http-1")).tags).toEqual({ site: "lab" });

  const state = (await service.getDeviceRegistrationState("sensor-http-1")).responseBody;
  expect(state).toMatchObject({ registrationId: "sensor-http-1", deviceId: "thermostat-http-1", status: "assigned" });
  expect((await service.getIndividualEnrollment("sensor-http-1")).responseBody.registrationState).toMatchObject({
    status: "assigned",
  });
  // A wrong key is refused with 401, as Azure refuses an attestation that fails.
  await expect(register("sensor-http-1", Buffer.alloc(32, 3).toString("base64"))).rejects.toMatchObject({
    name: "UnauthorizedError",
  });
}, 30_000);

it("provisions group members over Http with keys derived from the group key, as IoT Edge devices when the group says so", async () => {
  const group = (
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: "http-fleet",
      attestation: { type: "symmetricKey" },
      capabilities: { iotEdge: true },
      initialTwin: { tags: { fleet: "http" }, properties: { desired: {} } },
    } as never)
  ).responseBody;
  const groupKey = group.attestation.symmetricKey!.primaryKey;
  const key = deriveGroupKey(groupKey, "member-http-7");

  const result = await register("member-http-7", key);
  expect(result).toMatchObject({ deviceId: "member-http-7", assignedHub: "localhost", status: "assigned" });
  await connectAsAssigned(result as never, key);
  expect(hub.core.identities.require("member-http-7").capabilities).toEqual({ iotEdge: true });
  const states = await service.createEnrollmentGroupDeviceRegistrationStateQuery({ query: "*" }, "http-fleet").next();
  expect((states.responseBody as unknown as { registrationId: string }[]).map((s) => s.registrationId)).toEqual([
    "member-http-7",
  ]);
  // The group key itself is not a member's key.
  await expect(register("member-http-8", groupKey)).rejects.toMatchObject({ name: "UnauthorizedError" });
}, 30_000);

/**
 * runBulkEnrollmentOperation settles its promise only when a callback is given too (azure-iot-provisioning-service
 * 1.11 calls back only `if (callback)`): the callback form is the one that works against Azure as here.
 */
function bulk(operation: { mode: string; enrollments: object[] }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    void service.runBulkEnrollmentOperation(operation as never, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

it("runs bulk enrollment operations item by item and pages queries with x-ms-continuation", async () => {
  const enrollments = ["bulk-a", "bulk-b", "bulk-c"].map((registrationId) => ({
    registrationId,
    attestation: { type: "symmetricKey" },
  }));
  expect(await bulk({ mode: "create", enrollments })).toEqual({ isSuccessful: true, errors: [] });
  expect(await bulk({ mode: "create", enrollments: enrollments.slice(0, 1) })).toMatchObject({
    isSuccessful: false,
    errors: [{ registrationId: "bulk-a", errorCode: 409201 }],
  });

  const query = service.createIndividualEnrollmentQuery({ query: "*" }, 2);
  const seen: string[] = [];
  do {
    // next() without an argument starts again at page one, as the IoT Hub service SDK's query does.
    const page = await query.next(query.continuationToken);
    seen.push(...(page.responseBody as unknown as { registrationId: string }[]).map((e) => e.registrationId));
  } while (query.hasMoreResults);
  expect(seen).toEqual(expect.arrayContaining(["bulk-a", "bulk-b", "bulk-c"]));
  expect(new Set(seen).size).toBe(seen.length);

  expect(await bulk({ mode: "delete", enrollments })).toMatchObject({ isSuccessful: true });
  await expect(service.getIndividualEnrollment("bulk-b")).rejects.toMatchObject({ response: { statusCode: 404 } });
});

it("re-registration keeps the device's twin by default and resets it to the initial twin when migrateDeviceData is false", async () => {
  const keep = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "again-keep",
      attestation: { type: "symmetricKey" },
      initialTwin: { tags: {}, properties: { desired: { level: 1 } } },
    } as never)
  ).responseBody;
  const reset = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "again-reset",
      attestation: { type: "symmetricKey" },
      initialTwin: { tags: {}, properties: { desired: { level: 1 } } },
      reprovisionPolicy: { updateHubAssignment: true, migrateDeviceData: false },
    } as never)
  ).responseBody;
  for (const enrollment of [keep, reset]) {
    await register(enrollment.registrationId, enrollment.attestation.symmetricKey!.primaryKey);
    await hub.core.twins.patch(enrollment.registrationId, undefined, { properties: { desired: { level: 2 } } }, "*");
  }
  const kept = await register("again-keep", keep.attestation.symmetricKey!.primaryKey);
  const wasReset = await register("again-reset", reset.attestation.symmetricKey!.primaryKey);
  expect(kept).toMatchObject({ status: "assigned", substatus: "initialAssignment" });
  expect(wasReset).toMatchObject({ status: "assigned", substatus: "deviceDataReset" });
  expect(hub.core.twins.json(hub.core.identities.require("again-keep")).properties).toMatchObject({
    desired: { level: 2 },
  });
  expect(hub.core.twins.json(hub.core.identities.require("again-reset")).properties).toMatchObject({
    desired: { level: 1 },
  });
}, 30_000);

it("manages enrollment groups and registration states: update with etag, attestation mechanism, delete", async () => {
  const group = (
    await service.createOrUpdateEnrollmentGroup({
      enrollmentGroupId: "crud-group",
      attestation: { type: "symmetricKey" },
    } as never)
  ).responseBody;
  const disabled = (await service.createOrUpdateEnrollmentGroup({ ...group, provisioningStatus: "disabled" }))
    .responseBody;
  expect(disabled.provisioningStatus).toBe("disabled");
  const mechanism = (await service.getEnrollmentGroupAttestationMechanism("crud-group")).responseBody;
  expect(mechanism).toEqual(group.attestation);
  // A member of a disabled group is told so, and no device is created.
  const key = deriveGroupKey(group.attestation.symmetricKey!.primaryKey, "crud-member");
  await expect(register("crud-member", key)).rejects.toThrow("status is disabled");
  expect(hub.core.identities.find("crud-member")).toBeUndefined();
  const state = (await service.getDeviceRegistrationState("crud-member")).responseBody;
  expect(state).toMatchObject({ registrationId: "crud-member", status: "disabled" });
  await service.deleteDeviceRegistrationState("crud-member", state.etag);
  await expect(service.getDeviceRegistrationState("crud-member")).rejects.toMatchObject({
    response: { statusCode: 404 },
  });
  await service.deleteEnrollmentGroup(disabled);
  await expect(service.getEnrollmentGroup("crud-group")).rejects.toMatchObject({ response: { statusCode: 404 } });
}, 30_000);

it("answers a device's registration status lookup (POST /{scope}/registrations/{id}) with its registration state", async () => {
  const enrollment = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "lookup-device",
      attestation: { type: "symmetricKey" },
    } as never)
  ).responseBody;
  const key = enrollment.attestation.symmetricKey!.primaryKey;
  await register("lookup-device", key);
  const { idScope } = hub.provisioning;
  const token = createSasToken(
    `${idScope}/registrations/lookup-device`,
    key,
    Math.floor(Date.now() / 1000) + 600,
    "registration",
  );
  const path = `/${idScope}/registrations/lookup-device?api-version=2019-03-31`;
  const answer = await rawRequest("POST", path, {
    authorization: token,
    body: JSON.stringify({ registrationId: "lookup-device" }),
    headers: { "Content-Type": "application/json; charset=utf-8" },
  });
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({
    registrationId: "lookup-device",
    status: "assigned",
    assignedHub: "localhost",
  });
  const refused = await rawRequest("POST", path, { authorization: token.replace(/sig=[^&]+/, "sig=AAAA"), body: "{}" });
  expect(refused.status).toBe(401);
  expect(refused.headers["x-ms-error-code"]).toBe("401002");
}, 30_000);

it("tells a registering device to poll after retry-after seconds: what HubOptions say, 1 by default", async () => {
  const enrollment = (
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "poll-now",
      attestation: { type: "symmetricKey" },
    } as never)
  ).responseBody;
  const { idScope } = hub.provisioning;
  const token = createSasToken(
    `${idScope}/registrations/poll-now`,
    enrollment.attestation.symmetricKey!.primaryKey,
    Math.floor(Date.now() / 1000) + 600,
    "registration",
  );
  const answer = await rawRequest("PUT", `/${idScope}/registrations/poll-now/register?api-version=2019-03-31`, {
    authorization: token,
    body: JSON.stringify({ registrationId: "poll-now" }),
  });
  expect([answer.status, JSON.parse(answer.body).status, answer.headers["retry-after"]]).toEqual([
    202,
    "assigning",
    "0",
  ]);

  // Another hub on this process's port map would take this hub's pooled connections: it is only asked, not called.
  const byDefault = await startTestHub();
  try {
    expect(byDefault.core.provisioning.retryAfterSeconds).toBe(1);
  } finally {
    await byDefault.stop();
    setPortMap(hub.redirects);
  }
}, 30_000);
