/**
 * The Device Provisioning Service's errors, in its own shape (not IoT Hub's): an HTTP status, a numeric `errorCode`,
 * `trackingId`, `message` and `timestampUtc` in the body (ProvisioningServiceErrorDetails in Azure's REST reference),
 * and the code again in the `x-ms-error-code` header. The SDKs choose their error class from the status alone.
 */
import { HubError } from "../errors";

export class DpsError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }

  toBody(trackingId: string): string {
    return JSON.stringify({
      errorCode: this.errorCode,
      trackingId,
      message: this.message,
      timestampUtc: new Date().toISOString(),
    });
  }
}

/**
 * 401002 (Unauthorized) and 404201 (not found) are the codes seen in answers from Azure; the others follow the same
 * pattern (status × 1000 + a small number) and are the local hub's choice.
 */
export const dpsBadRequest = (message: string) => new DpsError(400, 400004, message);
export const dpsUnauthorized = (message: string) => new DpsError(401, 401002, message);
export const dpsNotFound = (message: string) => new DpsError(404, 404201, message);
export const dpsConflict = (message: string) => new DpsError(409, 409201, message);
export const dpsPreconditionFailed = (what: string) =>
  new DpsError(412, 412002, `Precondition failed: the etag of ${what} does not match If-Match`);
export const dpsTooMany = (message: string) => new DpsError(403, 403001, message);
export const dpsInvalidApiVersion = () =>
  new DpsError(400, 400001, "The api-version is missing or is not one the provisioning service supports");

/** A failure from the hub's shared parts (body reading, storage): the same status, in the DPS's shape. */
export function asDpsError(err: unknown): DpsError | undefined {
  if (err instanceof DpsError) return err;
  if (err instanceof HubError) return new DpsError(err.status, err.status * 1000 + 1, err.message);
  return undefined;
}
