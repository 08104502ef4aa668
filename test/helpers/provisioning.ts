/**
 * For the tests of the hub's DPS: a hub and the service client on it, device-side provisioning clients as Microsoft's
 * samples build them, and a group member's key as Microsoft documents its derivation.
 */
import { createHmac } from "node:crypto";
import { ProvisioningDeviceClient } from "azure-iot-provisioning-device";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import { SymmetricKeySecurityClient } from "azure-iot-security-symmetric-key";
import { X509Security } from "azure-iot-security-x509";
import type { Hub } from "../localhub";
import { startTestHub, tempDir } from "./hub";

type Transport = Parameters<typeof ProvisioningDeviceClient.create>[2];
type Security = Parameters<typeof ProvisioningDeviceClient.create>[3];

/**
 * `ProvisioningDeviceClient.create("localhost", idScope, transport, new SymmetricKeySecurityClient(id, key))`. The cast
 * is only for TypeScript: the security package ships its own copy of azure-iot-common's types, which TypeScript does
 * not take for the provisioning package's (same code, separate declarations).
 */
export function symmetricKeyRegistration(idScope: string, registrationId: string, key: string, transport: Transport) {
  const security = new SymmetricKeySecurityClient(registrationId, key) as unknown as Security;
  return ProvisioningDeviceClient.create("localhost", idScope, transport, security);
}

/** `ProvisioningDeviceClient.create("localhost", idScope, transport, new X509Security(id, {cert, key}))`. */
export function x509Registration(
  idScope: string,
  registrationId: string,
  credentials: { cert: string; key: string },
  transport: Transport,
) {
  const security = new X509Security(registrationId, credentials) as unknown as Security;
  return ProvisioningDeviceClient.create("localhost", idScope, transport, security);
}

/** Hub options for provisioning tests: `retry-after: 0`, which the SDKs read as "poll now" (default 1). */
const POLL_NOW = { provisioning: { retryAfterSeconds: 0 } };

/** A test hub (fresh, or on `dataDir`) that tells devices to poll at once, and a ProvisioningServiceClient on it. */
export async function startProvisioningHub(
  dataDir = tempDir(),
): Promise<{ hub: Hub; service: ProvisioningServiceClient }> {
  const hub = await startTestHub(dataDir, POLL_NOW);
  return { hub, service: ProvisioningServiceClient.fromConnectionString(hub.provisioning.connectionString) };
}

/** A symmetric-key group member's key: the HMAC-SHA256 of its registration id under the group's key (base64). */
export function deriveGroupKey(groupKey: string, registrationId: string): string {
  return createHmac("sha256", Buffer.from(groupKey, "base64")).update(registrationId).digest("base64");
}
