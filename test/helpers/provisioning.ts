/** Device-side provisioning clients as Microsoft's samples build them, for the tests of the hub's DPS. */
import { ProvisioningDeviceClient } from "azure-iot-provisioning-device";
import { SymmetricKeySecurityClient } from "azure-iot-security-symmetric-key";
import { X509Security } from "azure-iot-security-x509";

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
export const POLL_NOW = { provisioning: { retryAfterSeconds: 0 } };
