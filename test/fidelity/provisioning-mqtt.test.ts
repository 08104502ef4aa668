/**
 * Device registration over MQTT and MQTT over WebSockets, on the hub's own ports 8883 and 443, as
 * azure-iot-provisioning-device-mqtt speaks it (its `Mqtt` and `MqttWs` transports, unmodified): CONNECT as
 * `{idScope}/registrations/{registrationId}/api-version=2019-03-31`, `$dps/registrations/PUT/iotdps-register`, the
 * poll on `iotdps-get-operationstatus`, answers on `$dps/registrations/res/{status}/?$rid=&retry-after=`. The device
 * then works with the hub as any other: here it gets a desired patch.
 */
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { Mqtt as ProvisioningMqtt, MqttWs as ProvisioningMqttWs } from "azure-iot-provisioning-device-mqtt";
import { Client as DeviceClient, Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { Registry } from "azure-iothub";
import type { Hub } from "../localhub";
import { deriveGroupKey, startProvisioningHub, symmetricKeyRegistration } from "../helpers/provisioning";

let hub: Hub;
let service: ProvisioningServiceClient;
beforeAll(async () => ({ hub, service } = await startProvisioningHub()));
afterAll(() => hub.stop());

const transports = [
  ["Mqtt", () => new ProvisioningMqtt()],
  ["MqttWs", () => new ProvisioningMqttWs()],
] as const;

/** Connects with the key it registered with and resolves with the first desired patch the service then sends. */
async function receiveDesiredPatch(assignedHub: string, deviceId: string, key: string): Promise<unknown> {
  const client = DeviceClient.fromConnectionString(
    `HostName=${assignedHub};DeviceId=${deviceId};SharedAccessKey=${key}`,
    Mqtt,
  );
  try {
    await client.open();
    const twin: Twin = await client.getTwin();
    const patches: unknown[] = [];
    twin.on("properties.desired", (patch: unknown) => patches.push(patch));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const registry = Registry.fromConnectionString(hub.connectionString);
    await registry.updateTwin(deviceId, { properties: { desired: { mode: "eco" } } }, "*");
    const deadline = Date.now() + 10_000;
    while (patches.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return patches[1];
  } finally {
    await client.close();
  }
}

describe.each(transports)("over %s", (name, transport) => {
  const id = name.toLowerCase();

  it("provisions an individually enrolled device, which then gets desired patches from the hub", async () => {
    const enrollment = (
      await service.createOrUpdateIndividualEnrollment({
        registrationId: `single-${id}`,
        attestation: { type: "symmetricKey" },
      } as never)
    ).responseBody;
    const key = enrollment.attestation.symmetricKey!.primaryKey;
    const result = await symmetricKeyRegistration(
      hub.provisioning.idScope,
      `single-${id}`,
      key,
      transport(),
    ).register();
    expect(result).toMatchObject({ assignedHub: "localhost", deviceId: `single-${id}`, status: "assigned" });
    const { assignedHub, deviceId } = result as { assignedHub: string; deviceId: string };
    expect(await receiveDesiredPatch(assignedHub, deviceId, key)).toMatchObject({ mode: "eco" });
  }, 30_000);

  it("provisions a member of a symmetric-key group with its derived key; a wrong key's CONNECT is refused, not authorized", async () => {
    const group = (
      await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: `group-${id}`,
        attestation: { type: "symmetricKey" },
      } as never)
    ).responseBody;
    const derived = deriveGroupKey(group.attestation.symmetricKey!.primaryKey, `member-${id}`);
    const result = await symmetricKeyRegistration(
      hub.provisioning.idScope,
      `member-${id}`,
      derived,
      transport(),
    ).register();
    expect(result).toMatchObject({ deviceId: `member-${id}`, status: "assigned" });
    expect(hub.core.identities.require(`member-${id}`).authentication.symmetricKey.primaryKey).toBe(derived);
    const wrong = Buffer.alloc(32, 9).toString("base64");
    await expect(
      symmetricKeyRegistration(hub.provisioning.idScope, `member-${id}-2`, wrong, transport()).register(),
    ).rejects.toThrow("Connection refused: Not authorized");
  }, 30_000);
});
