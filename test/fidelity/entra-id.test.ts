/**
 * `--oauth basic`: the service SDK's Microsoft Entra ID path (`Registry.fromTokenCredential`, `Authorization: Bearer`)
 * works with a token for IoT Hub's audience that has not expired; other tokens, and every bearer token without the
 * flag, get the hub's 401.
 */
import { Registry } from "azure-iothub";
import { ProvisioningServiceClient } from "azure-iot-provisioning-service";
import type { Hub } from "../localhub";
import { startTestHub, tempDir } from "../helpers/hub";

/** A JWT-shaped token as Entra ID issues it (the hub does not check the signature in basic mode). */
function jwt(claims: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ typ: "JWT", alg: "RS256", kid: "local" })}.${part(claims)}.${Buffer.from("signature").toString("base64url")}`;
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** A TokenCredential (@azure/core-auth's shape) that hands out one fixed token and records the scopes asked for. */
function credential(token: string) {
  const scopes: (string | string[])[] = [];
  return {
    scopes,
    getToken: (scope: string | string[]) => {
      scopes.push(scope);
      return Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3600_000 });
    },
  };
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
    return 200;
  } catch (err) {
    return (err as { response?: { statusCode?: number } }).response?.statusCode;
  }
}

describe("with --oauth basic", () => {
  let hub: Hub;
  beforeAll(async () => (hub = await startTestHub(tempDir(), { oauth: "basic" })));
  afterAll(() => hub.stop());

  it("Registry.fromTokenCredential creates identities and updates twins with a token for IoT Hub's audience", async () => {
    const token = credential(jwt({ aud: "https://iothubs.azure.net", exp: inAnHour(), oid: "someone" }));
    const registry = Registry.fromTokenCredential(hub.hostName, token);
    await registry.create({ deviceId: "entraDevice" });
    await registry.addModule({ deviceId: "entraDevice", moduleId: "m" });
    const { responseBody: twin } = await registry.getModuleTwin("entraDevice", "m");
    await registry.updateModuleTwin("entraDevice", "m", { properties: { desired: { viaEntra: true } } }, twin.etag);
    expect(hub.core.identities.find("entraDevice", "m")?.twin.desired.values).toEqual({ viaEntra: true });
    expect(token.scopes).toContain("https://iothubs.azure.net/.default");
  });

  it("refuses a token for another audience, an expired one, and one that is not a JWT, with 401", async () => {
    const tokens = [
      jwt({ aud: "https://management.azure.com", exp: inAnHour() }),
      jwt({ aud: "https://iothubs.azure.net", exp: Math.floor(Date.now() / 1000) - 3600 }),
      jwt({ aud: "https://iothubs.azure.net" }),
      "not-a-jwt",
    ];
    for (const token of tokens) {
      const registry = Registry.fromTokenCredential(hub.hostName, credential(token));
      expect(await statusOf(registry.get("entraDevice"))).toBe(401);
    }
  });

  it("ProvisioningServiceClient.fromTokenCredential manages enrollments with a token for the DPS's audience only", async () => {
    const token = credential(jwt({ aud: "https://azure-devices-provisioning.net", exp: inAnHour() }));
    const service = ProvisioningServiceClient.fromTokenCredential(hub.hostName, token);
    await service.createOrUpdateIndividualEnrollment({
      registrationId: "entra-enrolled",
      attestation: { type: "symmetricKey" },
    } as never);
    expect((await service.getIndividualEnrollment("entra-enrolled")).responseBody.registrationId).toBe(
      "entra-enrolled",
    );
    expect(token.scopes).toContain("https://azure-devices-provisioning.net/.default");
    const hubToken = credential(jwt({ aud: "https://iothubs.azure.net", exp: inAnHour() }));
    const refused = ProvisioningServiceClient.fromTokenCredential(hub.hostName, hubToken);
    expect(await statusOf(refused.getIndividualEnrollment("entra-enrolled"))).toBe(401);
  });
});

describe("without --oauth", () => {
  let hub: Hub;
  const lines: string[] = [];
  beforeAll(async () => (hub = await startTestHub(tempDir(), { log: (line) => lines.push(line) })));
  afterAll(() => hub.stop());

  it("refuses every bearer token with 401 and logs how to enable them", async () => {
    const token = credential(jwt({ aud: "https://iothubs.azure.net", exp: inAnHour() }));
    const registry = Registry.fromTokenCredential(hub.hostName, token);
    let error: { name?: string; response?: { statusCode?: number } } = {};
    await registry.create({ deviceId: "refused" }).catch((err: typeof error) => (error = err));
    expect(error.response?.statusCode).toBe(401);
    expect(error.name).toBe("UnauthorizedError");
    expect(lines.some((line) => line.includes("--oauth basic"))).toBe(true);
    expect(hub.core.identities.find("refused")).toBeUndefined();
  });
});
