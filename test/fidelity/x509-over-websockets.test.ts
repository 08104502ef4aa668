/**
 * X.509 devices over MQTT over WebSockets (`MqttWs`, `wss://{host}:443/$iothub/websocket`): the HTTPS port asks for a
 * client certificate without requiring it and uses it as 8883 does. MQTT over WebSockets is port 443
 * (MicrosoftDocs/azure-docs articles/iot-hub/iot-hub-devguide-protocols.md, port numbers); the device SDK sends its
 * certificate on that TLS connection (azure-iot-mqtt-base mqtt_base.js puts x509.cert/key into the connect options).
 * Clients that send no certificate (the service SDK's REST calls, browsers, SAS devices) are served as before.
 */
import * as https from "node:https";
import { Registry } from "azure-iothub";
import { Client, Message } from "azure-iot-device";
import { MqttWs } from "azure-iot-device-mqtt";
import { ClientCertificate, certificate, trustedClientCa } from "../helpers/client-certificates";
import type { Hub } from "../localhub";
import { moduleConnectionString, policyToken, startTestHub, tempDir } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
let trustedCa: ClientCertificate;
const clients: Client[] = [];

beforeAll(async () => {
  const dataDir = tempDir();
  trustedCa = await trustedClientCa(dataDir, "websocket test CA");
  hub = await startTestHub(dataDir);
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(() => hub.stop());

async function openOverWebSockets(deviceId: string, credentials: { cert: string; key: string }) {
  const client = Client.fromConnectionString(`HostName=localhost;DeviceId=${deviceId};x509=true`, MqttWs);
  clients.push(client);
  await client.setOptions({ cert: credentials.cert, key: credentials.key });
  await client.open();
  return client;
}

it("a self-signed X.509 device connects over MqttWs, reads its twin and sends telemetry", async () => {
  const own = await certificate("ws-self-signed");
  await registry.create({
    deviceId: "ws-self-signed",
    authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: own.sha1 } },
  });
  const client = await openOverWebSockets("ws-self-signed", own);
  expect((await client.getTwin()).properties.desired.$version).toBe(1);
  await client.sendEvent(new Message("over wss with a certificate"));
  expect((await registry.get("ws-self-signed")).responseBody.connectionState).toBe("Connected");
});

it("a CA-signed X.509 device connects over MqttWs with a certificate signed by a CA in DIR/client-cas", async () => {
  await registry.create({ deviceId: "ws-ca-signed", authentication: { type: "certificateAuthority" } });
  const client = await openOverWebSockets("ws-ca-signed", await certificate("ws-ca-signed", trustedCa));
  expect((await client.getTwin()).properties.reported.$version).toBe(1);
});

it("an X.509 device with another certificate is refused over MqttWs (UnauthorizedError)", async () => {
  const own = await certificate("ws-refused");
  const stranger = await certificate("ws-refused");
  await registry.create({
    deviceId: "ws-refused",
    authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: own.sha1 } },
  });
  const err = await openOverWebSockets("ws-refused", stranger).catch((e) => e);
  expect(err.name).toBe("UnauthorizedError");
  // A CA-signed certificate for another device does not pass either.
  await registry.create({ deviceId: "ws-ca-other", authentication: { type: "certificateAuthority" } });
  const wrongName = await openOverWebSockets("ws-ca-other", await certificate("ws-someone-else", trustedCa)).catch(
    (e) => e,
  );
  expect(wrongName.name).toBe("UnauthorizedError");
});

it("clients without a certificate are served on 443 as before: REST, SAS devices over MqttWs", async () => {
  await registry.create({ deviceId: "ws-sas" });
  const sas = Client.fromConnectionString(moduleConnectionString(hub, "ws-sas"), MqttWs);
  clients.push(sas);
  await sas.open();
  expect((await sas.getTwin()).properties.desired.$version).toBe(1);
  // A plain HTTPS client that sends no certificate, as a browser or curl does.
  const status = await new Promise<number>((resolve, reject) =>
    https
      .get(
        {
          host: "localhost",
          port: 443,
          path: "/devices/ws-sas?api-version=2021-04-12",
          headers: { Authorization: policyToken(hub, "registryRead") },
          agent: false,
        },
        (res) => (res.resume(), resolve(res.statusCode ?? 0)),
      )
      .on("error", reject),
  );
  expect(status).toBe(200);
});

it("a REST client that happens to send a certificate nobody registered is still served", async () => {
  const stray = await certificate("some browser user");
  const status = await new Promise<number>((resolve, reject) =>
    https
      .get(
        {
          host: "localhost",
          port: 443,
          path: "/devices/ws-sas?api-version=2021-04-12",
          headers: { Authorization: policyToken(hub, "registryRead") },
          cert: stray.cert,
          key: stray.key,
          agent: false,
        },
        (res) => (res.resume(), resolve(res.statusCode ?? 0)),
      )
      .on("error", reject),
  );
  expect(status).toBe(200);
});
