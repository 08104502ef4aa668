/**
 * The provisioning core's rules that no SDK call reaches cheaply: Azure's documented derived-key example, and the
 * limits (bulk size, registration payload, enrollment groups), each refused in the DPS's shape, never a crash.
 */
import { HubCore } from "../localhub/core/hub-core";
import { deriveDeviceKey } from "../localhub/core/provisioning/dps-auth";
import { MAX_ENROLLMENT_GROUPS } from "../localhub/core/provisioning/enrollments";
import { createSasToken } from "../localhub/core/sas";
import { memoryStores } from "../localhub/stores";

let core: HubCore;
beforeEach(async () => {
  core = await HubCore.open("localhost", memoryStores());
});
afterEach(() => core.close());

it("derives a group member's key as Azure's symmetric-key group guide shows it", () => {
  // "How to provision devices using symmetric key enrollment groups" (MicrosoftDocs, iot-dps).
  expect(
    deriveDeviceKey(
      "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
      "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
    ),
  ).toBe("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
});

it("refuses a bulk operation of more than 10 enrollments with 400", async () => {
  const enrollments = Array.from({ length: 11 }, (_, i) => ({
    registrationId: `bulk-${i}`,
    attestation: { type: "symmetricKey" },
  }));
  await expect(core.provisioning.enrollments.bulk({ mode: "create", enrollments })).rejects.toMatchObject({
    status: 400,
    errorCode: 400004,
  });
  expect(core.provisioning.enrollments.find("enrollment", "bulk-0")).toBeUndefined();
});

it("refuses a registration payload over 4 KB with 400 and creates no device", async () => {
  const { responseKey, idScope } = await enrol("big-payload");
  const token = createSasToken(
    `${idScope}/registrations/big-payload`,
    responseKey,
    Date.now() / 1000 + 60,
    "registration",
  );
  const payload = { blob: "x".repeat(5000) };
  await expect(
    core.provisioning.register(idScope, "big-payload", { registrationId: "big-payload", payload }, { sasToken: token }),
  ).rejects.toMatchObject({ status: 400 });
  expect(core.identities.find("big-payload")).toBeUndefined();
});

it(`refuses enrollment group ${MAX_ENROLLMENT_GROUPS + 1} with 403 and keeps the others`, async () => {
  for (let i = 0; i < MAX_ENROLLMENT_GROUPS; i++) {
    await core.provisioning.enrollments.put(
      "enrollment-group",
      `g${i}`,
      { attestation: { type: "symmetricKey" } },
      undefined,
    );
  }
  await expect(
    core.provisioning.enrollments.put(
      "enrollment-group",
      "one-more",
      { attestation: { type: "symmetricKey" } },
      undefined,
    ),
  ).rejects.toMatchObject({ status: 403 });
  expect([...core.provisioning.enrollments.all("enrollment-group")]).toHaveLength(MAX_ENROLLMENT_GROUPS);
});

it("refuses odd ids, attestations and allocation policies with 400 naming the field; keeps a served policy", async () => {
  const put = (id: string, body: unknown) => core.provisioning.enrollments.put("enrollment", id, body, undefined);
  await expect(put("-starts-with-a-dash", { attestation: { type: "symmetricKey" } })).rejects.toThrow(/registrationId/);
  await expect(put("ok", { attestation: { type: "tpm" } })).rejects.toThrow(/TPM/);
  await expect(
    put("ok", { attestation: { type: "symmetricKey", symmetricKey: { primaryKey: "short" } } }),
  ).rejects.toThrow(/primaryKey/);
  await expect(put("ok", { attestation: { type: "symmetricKey" }, deviceId: "bad/id" })).rejects.toThrow(/deviceId/);
  await expect(
    put("ok", { attestation: { type: "symmetricKey" }, initialTwin: { tags: { "a.b": 1 } } }),
  ).rejects.toThrow(/initialTwin/);
  await expect(put("ok", { attestation: { type: "symmetricKey" }, allocationPolicy: "custom" })).rejects.toThrow(
    /custom/,
  );
  const kept = await put("geo", { attestation: { type: "symmetricKey" }, allocationPolicy: "geoLatency" });
  expect(kept.allocationPolicy).toBe("geoLatency");
});

async function enrol(registrationId: string) {
  const json = await core.provisioning.enrollments.put(
    "enrollment",
    registrationId,
    { attestation: { type: "symmetricKey" } },
    undefined,
  );
  const key = (json.attestation as { symmetricKey: { primaryKey: string } }).symmetricKey.primaryKey;
  return { responseKey: key, idScope: core.provisioning.idScope };
}
