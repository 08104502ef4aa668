/**
 * Identities beyond SAS keys, as the real SDKs create and use them: X.509 self-signed (thumbprints) and CA-signed
 * devices connecting over MQTT with a client certificate, and IoT Edge devices with their children's scopes.
 */
import { Registry } from "azure-iothub";
import { Client } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { certificate, trustedClientCa } from "../helpers/client-certificates";
import type { Hub } from "../localhub";
import { startTestHub, tempDir } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
let trustedCa: Awaited<ReturnType<typeof certificate>>;
const clients: Client[] = [];

beforeAll(async () => {
  const dataDir = tempDir();
  trustedCa = await trustedClientCa(dataDir, "tutorial test CA");
  hub = await startTestHub(dataDir);
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(() => hub.stop());

/** Opens a device client that authenticates with a certificate, as the SDK's x509 samples do. */
async function openWithCertificate(deviceId: string, credentials: { cert: string; key: string }) {
  const client = Client.fromConnectionString(`HostName=localhost;DeviceId=${deviceId};x509=true`, Mqtt);
  clients.push(client);
  await client.setOptions({ cert: credentials.cert, key: credentials.key });
  await client.open();
  return client;
}

describe("X.509 self-signed devices", () => {
  it("keep their thumbprints through create and get, without keys", async () => {
    const own = await certificate("x509-kept");
    await registry.create({
      deviceId: "x509-kept",
      authentication: { x509Thumbprint: { primaryThumbprint: own.sha1, secondaryThumbprint: own.sha256 } },
    });
    const device = (await registry.get("x509-kept")).responseBody;
    expect(device.authentication).toMatchObject({
      type: "selfSigned",
      x509Thumbprint: { primaryThumbprint: own.sha1.toUpperCase(), secondaryThumbprint: own.sha256.toUpperCase() },
    });
    expect(device.authentication?.symmetricKey).toEqual({ primaryKey: null, secondaryKey: null });
  });

  it("connect over MQTT with the certificate whose SHA-1 or SHA-256 thumbprint is registered", async () => {
    const bySha1 = await certificate("x509-sha1");
    const bySha256 = await certificate("x509-sha256");
    await registry.create({
      deviceId: "x509-sha1",
      authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: bySha1.sha1 } },
    });
    await registry.create({
      deviceId: "x509-sha256",
      authentication: { type: "selfSigned", x509Thumbprint: { secondaryThumbprint: bySha256.sha256 } },
    });
    const first = await openWithCertificate("x509-sha1", bySha1);
    expect((await first.getTwin()).properties.desired.$version).toBe(1);
    await openWithCertificate("x509-sha256", bySha256);
    expect((await registry.get("x509-sha256")).responseBody.connectionState).toBe("Connected");
  });

  it("are refused (CONNACK 5, UnauthorizedError) with another certificate", async () => {
    const own = await certificate("x509-refused");
    const stranger = await certificate("x509-refused");
    await registry.create({
      deviceId: "x509-refused",
      authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: own.sha1 } },
    });
    const err = await openWithCertificate("x509-refused", stranger).catch((e) => e);
    expect(err.name).toBe("UnauthorizedError");
  });

  it("refuse a thumbprint that is not a SHA-1 or SHA-256 in hex with 400", async () => {
    const err = await registry
      .create({
        deviceId: "x509-bad",
        authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: "abc" } },
      })
      .catch((e) => e);
    expect(err.response?.statusCode).toBe(400);
  });
});

describe("X.509 CA-signed devices", () => {
  beforeAll(async () => {
    await registry.create({ deviceId: "ca-signed", authentication: { type: "certificateAuthority" } });
  });

  it("keep type certificateAuthority, with neither keys nor thumbprints", async () => {
    expect((await registry.get("ca-signed")).responseBody.authentication).toEqual({
      type: "certificateAuthority",
      symmetricKey: { primaryKey: null, secondaryKey: null },
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    });
  });

  it("connect with a certificate for the device signed by a CA in DIR/client-cas", async () => {
    const client = await openWithCertificate("ca-signed", await certificate("ca-signed", trustedCa));
    expect((await client.getTwin()).properties.reported.$version).toBe(1);
  });

  it("are refused with a certificate from another CA, or one that names another device", async () => {
    const otherCa = await certificate("some other CA");
    expect((await openWithCertificate("ca-signed", await certificate("ca-signed", otherCa)).catch((e) => e)).name).toBe(
      "UnauthorizedError",
    );
    expect(
      (await openWithCertificate("ca-signed", await certificate("someone-else", trustedCa)).catch((e) => e)).name,
    ).toBe("UnauthorizedError");
  });
});

describe("IoT Edge identities", () => {
  it("give an Edge device a deviceScope, and its child device that scope as parent", async () => {
    await registry.create({ deviceId: "edge-gw", capabilities: { iotEdge: true } });
    const edge = (await registry.get("edge-gw")).responseBody as any;
    expect(edge.capabilities).toEqual({ iotEdge: true });
    expect(edge.deviceScope).toMatch(/^ms-azure-iot-edge:\/\/edge-gw-.+$/);

    await registry.create({ deviceId: "edge-leaf", parentScopes: [edge.deviceScope] });
    const leaf = (await registry.get("edge-leaf")).responseBody as any;
    expect(leaf).toMatchObject({ deviceScope: edge.deviceScope, parentScopes: [edge.deviceScope] });
    expect((await registry.getTwin("edge-leaf")).responseBody).toMatchObject({ deviceScope: edge.deviceScope });
  });

  it("nest an Edge device under another, keeping its own scope", async () => {
    const top = (await registry.create({ deviceId: "edge-top", capabilities: { iotEdge: true } })).responseBody as any;
    await registry.create({
      deviceId: "edge-lower",
      capabilities: { iotEdge: true },
      parentScopes: [top.deviceScope],
    });
    const lower = (await registry.get("edge-lower")).responseBody as any;
    expect(lower.deviceScope).toMatch(/^ms-azure-iot-edge:\/\/edge-lower-/);
    expect(lower.parentScopes).toEqual([top.deviceScope]);
  });

  it("refuse a parent scope that is no Edge device's with 400", async () => {
    const err = await registry
      .create({ deviceId: "orphan", parentScopes: ["ms-azure-iot-edge://nobody-1"] })
      .catch((e) => e);
    expect(err.response?.statusCode).toBe(400);
  });
});
