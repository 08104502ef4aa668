/**
 * X.509 attestation with the provisioning service, as Azure's "Provision devices with X.509 certificates" tutorials
 * set it up and `azure-iot-security-x509` presents it: the TLS client certificate (common name = registration id) on
 * every transport. An individual enrollment holds the device's certificate; a group holds its signing CA, or names a
 * CA by `caReferences`, which the local hub reads from `DIR/client-cas/` by file name (Azure: a CA verified in the
 * DPS). The assigned device then connects to the hub with the same certificate (a selfSigned identity).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { Http as ProvisioningHttp } from "azure-iot-provisioning-device-http";
import { Mqtt as ProvisioningMqtt, MqttWs as ProvisioningMqttWs } from "azure-iot-provisioning-device-mqtt";
import { Amqp as ProvisioningAmqp, AmqpWs as ProvisioningAmqpWs } from "azure-iot-provisioning-device-amqp";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { ClientCertificate, certificate } from "../helpers/client-certificates";
import { tempDir } from "../helpers/hub";
import { startProvisioningHub, x509Registration } from "../helpers/provisioning";

let hub: Hub;
let service: ProvisioningServiceClient;
let groupCa: ClientCertificate;
let folderCa: ClientCertificate;
beforeAll(async () => {
  const dataDir = tempDir();
  [groupCa, folderCa] = await Promise.all([certificate("group signing CA"), certificate("folder CA")]);
  fs.mkdirSync(path.join(dataDir, "client-cas"));
  fs.writeFileSync(path.join(dataDir, "client-cas", "factory-ca.pem"), folderCa.cert);
  ({ hub, service } = await startProvisioningHub(dataDir));
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: "x509-signed",
    attestation: { type: "x509", x509: { signingCertificates: { primary: { certificate: groupCa.cert } } } },
  } as never);
  await service.createOrUpdateEnrollmentGroup({
    enrollmentGroupId: "x509-folder",
    attestation: { type: "x509", x509: { caReferences: { primary: "factory-ca" } } },
  } as never);
});
afterAll(() => hub.stop());

async function connectWithCertificate(deviceId: string, credentials: { cert: string; key: string }) {
  const client = DeviceClient.fromConnectionString(`HostName=localhost;DeviceId=${deviceId};x509=true`, Mqtt);
  await client.setOptions({ cert: credentials.cert, key: credentials.key });
  await client.open();
  await client.close();
}

const transports = [
  ["Http", () => new ProvisioningHttp()],
  ["Mqtt", () => new ProvisioningMqtt()],
  ["MqttWs", () => new ProvisioningMqttWs()],
  ["Amqp", () => new ProvisioningAmqp()],
  ["AmqpWs", () => new ProvisioningAmqpWs()],
] as const;

describe.each(transports)("over %s", (name, transport) => {
  const id = name.toLowerCase();

  it("provisions an individual enrollment's device by its certificate, which then connects to the hub with it", async () => {
    const device = await certificate(`x509-single-${id}`);
    const enrollment = (
      await service.createOrUpdateIndividualEnrollment({
        registrationId: `x509-single-${id}`,
        attestation: { type: "x509", x509: { clientCertificates: { primary: { certificate: device.cert } } } },
      } as never)
    ).responseBody;
    // The service answers the certificate's info, not the certificate.
    expect(enrollment.attestation.x509!.clientCertificates!.primary).toEqual({
      info: expect.objectContaining({
        sha256Thumbprint: device.sha256.toUpperCase(),
        subjectName: `CN=x509-single-${id}`,
      }),
    });
    const result = await x509Registration(
      hub.provisioning.idScope,
      `x509-single-${id}`,
      device,
      transport(),
    ).register();
    expect(result).toMatchObject({ deviceId: `x509-single-${id}`, assignedHub: "localhost", status: "assigned" });
    await connectWithCertificate(`x509-single-${id}`, device);
  }, 30_000);

  it("provisions group members signed by the group's CA or by a CA the group names; refuses a stranger's", async () => {
    const signed = await certificate(`x509-member-${id}`, groupCa);
    const result = await x509Registration(
      hub.provisioning.idScope,
      `x509-member-${id}`,
      signed,
      transport(),
    ).register();
    expect(result).toMatchObject({ deviceId: `x509-member-${id}`, status: "assigned" });
    await connectWithCertificate(`x509-member-${id}`, signed);

    const fromFolder = await certificate(`x509-folder-${id}`, folderCa);
    await x509Registration(hub.provisioning.idScope, `x509-folder-${id}`, fromFolder, transport()).register();
    expect((await service.getDeviceRegistrationState(`x509-folder-${id}`)).responseBody).toMatchObject({
      status: "assigned",
    });

    const stranger = await certificate(`x509-stranger-${id}`);
    await expect(
      x509Registration(hub.provisioning.idScope, `x509-stranger-${id}`, stranger, transport()).register(),
    ).rejects.toMatchObject(
      // Http answers 401; MQTT refuses the CONNECT (return code 5), as it does a wrong key; AMQP closes.
      name === "Http"
        ? { name: "UnauthorizedError" }
        : name.startsWith("Mqtt")
          ? { message: "Connection refused: Not authorized" }
          : { condition: "amqp:unauthorized-access" }, // AMQP: the connection is closed with it
    );
    expect(hub.core.identities.find(`x509-stranger-${id}`)).toBeUndefined();
  }, 30_000);
});

describe.each(transports)("with an intermediate CA, over %s", (name, transport) => {
  it("provisions a device whose certificate an intermediate signed, sent along with it, for a group of the root", async () => {
    const id = `x509-chain-${name.toLowerCase()}`;
    const intermediate = await certificate(`intermediate for ${name}`, groupCa, true);
    const leaf = await certificate(id, intermediate);
    // The device presents its certificate and the intermediate, as Azure's X.509 tutorials have it do.
    const chain = { cert: `${leaf.cert.trim()}\n${intermediate.cert.trim()}\n`, key: leaf.key };
    const result = await x509Registration(hub.provisioning.idScope, id, chain, transport()).register();
    expect(result).toMatchObject({ deviceId: id, status: "assigned" });
    expect((await service.getDeviceRegistrationState(id)).responseBody).toMatchObject({
      enrollmentGroupId: "x509-signed",
    });
  }, 30_000);
});
