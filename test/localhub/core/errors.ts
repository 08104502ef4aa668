/**
 * The hub's errors, in the shape the real IoT Hub sends them: an HTTP status, a named code that the service SDK reads
 * from `Message` ("ErrorCode:<Name>;<text>"), and the numeric code the device SDK reads from MQTT twin responses.
 */
// Numbered as the C# service SDK's enum Microsoft.Azure.Devices.Common.Exceptions.ErrorCode numbers them.
const NUMERIC_CODES: Record<string, number> = {
  ArgumentInvalid: 400004,
  ArgumentNull: 400005,
  InvalidProtocolVersion: 400001,
  IotHubUnauthorizedAccess: 401002,
  TooManyModulesOnDevice: 403010,
  DeviceNotFound: 404001,
  DeviceNotOnline: 404103,
  ModuleNotFound: 404010,
  NotFound: 404000,
  DeviceAlreadyExists: 409001,
  ModuleAlreadyExistsOnDevice: 409301,
  PreconditionFailed: 412001,
  DeviceMessageLockLost: 412002,
  RequestEntityTooLarge: 413002,
  ThrottlingException: 429001,
  ServerError: 500001,
  ServiceUnavailable: 503001,
  GatewayTimeout: 504101,
};

export class HubError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  get numericCode(): number {
    return NUMERIC_CODES[this.code] ?? this.status * 1000;
  }

  /**
   * REST body: the service SDK splits `Message` on ';' and ':' to find the code. `trackingId` is the response's
   * x-ms-request-id without dashes, as in DevicesClient_UpdateDevice_EtagDoesNotMatch.json:
   * "Tracking ID:e4a9090fbc2f4a78b13ba7a01fb30ffe-G:12-TimeStamp:07/07/2021 20:45:26".
   */
  toRestBody(trackingId: string): string {
    return JSON.stringify({
      Message: `ErrorCode:${this.code};${this.message}`,
      ExceptionMessage: `Tracking ID:${trackingId}-G:0-TimeStamp:${trackingTimestamp(new Date())}`,
    });
  }

  /** MQTT twin response body: the device SDK looks at `errorCode`, not at the status in the topic. */
  toMqttBody(): string {
    return JSON.stringify({ errorCode: this.numericCode, message: this.message });
  }
}

/** `MM/dd/yyyy HH:mm:ss` in UTC, the way Azure stamps a tracking id. */
export function trackingTimestamp(at: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const date = `${two(at.getUTCMonth() + 1)}/${two(at.getUTCDate())}/${at.getUTCFullYear()}`;
  return `${date} ${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())}`;
}

export const invalidProtocolVersion = () => new HubError(400, "InvalidProtocolVersion", "BadRequest");
export const badRequest = (message: string) => new HubError(400, "ArgumentInvalid", message);
export const unauthorized = (message: string) => new HubError(401, "IotHubUnauthorizedAccess", message);
export const deviceNotFound = (deviceId: string) =>
  new HubError(404, "DeviceNotFound", `Device ${deviceId} not registered`);
export const moduleNotFound = (deviceId: string, moduleId: string) =>
  new HubError(404, "ModuleNotFound", `Module ${moduleId} on device ${deviceId} not registered`);
export const preconditionFailed = (what: string) =>
  new HubError(412, "PreconditionFailed", `Precondition failed: the etag of ${what} does not match If-Match`);

/**
 * Direct-method failures: the real hub nests a JSON document in `Message` for these (errorCode, trackingId, message,
 * info.timeout, timestampUtc), as azure-iot-cli-extension#54 and Azure/iotedge#98 show it.
 */
class MethodError extends HubError {
  constructor(
    status: number,
    code: string,
    message: string,
    private readonly timeoutSeconds: number,
  ) {
    super(status, code, message);
  }

  toRestBody(trackingId: string): string {
    const timeout = new Date(this.timeoutSeconds * 1000).toISOString().slice(11, 19);
    const inner = {
      errorCode: this.numericCode,
      trackingId: `${trackingId}-G:0-TimeStamp:${new Date().toISOString()}`,
      message: this.message,
      info: { timeout },
      timestampUtc: new Date().toISOString(),
    };
    return JSON.stringify({ Message: JSON.stringify(inner), ExceptionMessage: "" });
  }
}

export const deviceNotOnline = (connectTimeoutSeconds: number) =>
  new MethodError(404, "DeviceNotOnline", "Timed out waiting for device to connect.", connectTimeoutSeconds);
export const methodResponseTimeout = (responseTimeoutSeconds: number) =>
  new MethodError(504, "GatewayTimeout", "Timed out waiting for the response from device.", responseTimeoutSeconds);
