/**
 * Device registration over AMQP and AMQP over WebSockets, on the hub's own ports 5671 and 443, as
 * azure-iot-provisioning-device-amqp (its `Amqp` and `AmqpWs` transports, unmodified) speaks it: SASL PLAIN as
 * `{idScope}/registrations/{registrationId}`, links on that address, `iotdps-operation-type` requests answered by
 * correlation id. Symmetric keys, individual and group; the device then connects to the hub with its key.
 */
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { Amqp as ProvisioningAmqp, AmqpWs as ProvisioningAmqpWs } from "azure-iot-provisioning-device-amqp";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { deriveGroupKey, startProvisioningHub, symmetricKeyRegistration } from "../helpers/provisioning";

let hub: Hub;
let service: ProvisioningServiceClient;
beforeAll(async () => ({ hub, service } = await startProvisioningHub()));
afterAll(() => hub.stop());

const transports = [
  ["Amqp", () => new ProvisioningAmqp()],
  ["AmqpWs", () => new ProvisioningAmqpWs()],
] as const;

async function connect(deviceId: string, key: string): Promise<void> {
  const client = DeviceClient.fromConnectionString(
    `HostName=localhost;DeviceId=${deviceId};SharedAccessKey=${key}`,
    Mqtt,
  );
  await client.open();
  await client.close();
}

describe.each(transports)("over %s", (name, transport) => {
  const id = name.toLowerCase();

  it("provisions an individually enrolled device, which then connects to the hub with its key", async () => {
    const enrollment = (
      await service.createOrUpdateIndividualEnrollment({
        registrationId: `amqp-single-${id}`,
        attestation: { type: "symmetricKey" },
      } as never)
    ).responseBody;
    const key = enrollment.attestation.symmetricKey!.primaryKey;
    const result = await symmetricKeyRegistration(
      hub.provisioning.idScope,
      `amqp-single-${id}`,
      key,
      transport(),
    ).register();
    expect(result).toMatchObject({ assignedHub: "localhost", deviceId: `amqp-single-${id}`, status: "assigned" });
    await connect(`amqp-single-${id}`, key);
  }, 30_000);

  it("provisions a symmetric-key group member with its derived key; a wrong key's login is refused", async () => {
    const group = (
      await service.createOrUpdateEnrollmentGroup({
        enrollmentGroupId: `amqp-group-${id}`,
        attestation: { type: "symmetricKey" },
      } as never)
    ).responseBody;
    const derived = deriveGroupKey(group.attestation.symmetricKey!.primaryKey, `amqp-member-${id}`);
    const result = await symmetricKeyRegistration(
      hub.provisioning.idScope,
      `amqp-member-${id}`,
      derived,
      transport(),
    ).register();
    expect(result).toMatchObject({ deviceId: `amqp-member-${id}`, status: "assigned" });
    await connect(`amqp-member-${id}`, derived);
    const wrong = Buffer.alloc(32, 7).toString("base64");
    await expect(
      symmetricKeyRegistration(hub.provisioning.idScope, `amqp-member-${id}-2`, wrong, transport()).register(),
    ).rejects.toMatchObject({ name: "NotConnectedError" }); // SASL outcome "auth": the connection never opens
  }, 30_000);
});
