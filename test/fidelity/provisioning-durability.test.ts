/**
 * The provisioning service keeps what it acknowledged, like the rest of the hub: an enrollment the service SDK was
 * told is created and a registration a device was told is assigning survive a kill -9, with the same ID scope and
 * policy key, and the device then connects with its key.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { Http as ProvisioningHttp } from "azure-iot-provisioning-device-http";
import { startTestHub, tempDir } from "../helpers/hub";
import { spawnHubCli } from "../helpers/hub-process";
import { symmetricKeyRegistration } from "../helpers/provisioning";

it("keeps an acknowledged enrollment, a registration and its device when killed with SIGKILL", async () => {
  const dataDir = tempDir();
  const cli = spawnHubCli(dataDir, ["--quiet", "--https-port", "0", "--mqtt-port", "0"]);
  try {
    await cli.ready();
    cli.connect();
    const env = fs.readFileSync(path.join(dataDir, "env"), "utf8");
    const connectionString = /^PROVISIONING_CONNECTION_STRING="([^"]+)"$/m.exec(env)![1];
    const idScope = /^PROVISIONING_ID_SCOPE=(.+)$/m.exec(env)![1];
    const service = ProvisioningServiceClient.fromConnectionString(connectionString);
    const enrollment = (
      await service.createOrUpdateIndividualEnrollment({
        registrationId: "durable-device",
        attestation: { type: "symmetricKey" },
      } as never)
    ).responseBody;
    const key = enrollment.attestation.symmetricKey!.primaryKey;
    await symmetricKeyRegistration(idScope, "durable-device", key, new ProvisioningHttp()).register();
    cli.child.kill("SIGKILL");
    await cli.exited;

    const hub = await startTestHub(dataDir);
    try {
      expect(hub.provisioning).toEqual({ connectionString, idScope });
      const again = ProvisioningServiceClient.fromConnectionString(connectionString);
      expect((await again.getIndividualEnrollment("durable-device")).responseBody.etag).toBe(enrollment.etag);
      expect((await again.getDeviceRegistrationState("durable-device")).responseBody).toMatchObject({
        status: "assigned",
        deviceId: "durable-device",
      });
      expect(hub.core.identities.require("durable-device").authentication.symmetricKey.primaryKey).toBe(key);
    } finally {
      await hub.stop();
    }
  } finally {
    await cli.stop();
  }
}, 60_000);
