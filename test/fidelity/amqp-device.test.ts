/**
 * Devices and modules over AMQP (`Amqp` on 5671, `AmqpWs` on 443 `$iothub/websocket`), unmodified: CBS put-token
 * with the audience the SDK writes (its token's `sr`, URL-encoded: azure-iot-device-amqp amqp.js), renewal on the
 * same connection, X.509 client certificates instead of CBS, one connection per identity, connection state.
 */
import { EventHubConsumerClient, ReceivedEventData, earliestEventPosition } from "@azure/event-hubs";
import { Registry } from "azure-iothub";
import { Client, Message, ModuleClient, SharedAccessKeyAuthenticationProvider } from "azure-iot-device";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import { certificate, trustedClientCa, ClientCertificate } from "../helpers/client-certificates";
import type { Hub } from "../localhub";
import { createSasToken } from "../localhub";
import { eventually, moduleConnectionString, startTestHub, tempDir } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
let ca: ClientCertificate;
const log: string[] = [];
const clients: { close(): Promise<unknown> }[] = [];
let consumer: EventHubConsumerClient;
const events: ReceivedEventData[] = [];

beforeAll(async () => {
  const dataDir = tempDir();
  ca = await trustedClientCa(dataDir, "amqp device test CA");
  hub = await startTestHub(dataDir, { log: (line) => log.push(line) });
  registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "amqp-dev" });
  await registry.addModule({ deviceId: "amqp-dev", moduleId: "amqp-mod" });
  consumer = new EventHubConsumerClient("$Default", hub.eventHubConnectionString());
  consumer.subscribe(
    { processEvents: (batch) => Promise.resolve(void events.push(...batch)), processError: () => Promise.resolve() },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(async () => {
  if (process.env.DUMP_LOG) console.log(log.join("\n"));
  await consumer.close();
  await hub.stop();
});

const transports = { Amqp, AmqpWs };
/** The telemetry these devices sent, as a backend reads it back, once there is an event from each. */
async function eventsFrom(deviceIds: string[]): Promise<ReceivedEventData[]> {
  const mine = () =>
    events.filter((e) => deviceIds.includes(String(e.systemProperties?.["iothub-connection-device-id"])));
  await eventually(() => mine().length >= deviceIds.length, `an event from each of ${deviceIds.join(", ")}`);
  return mine();
}
const connectionState = async (deviceId: string) => (await registry.get(deviceId)).responseBody.connectionState;

function deviceClient(connectionString: string, transport: typeof Amqp): Client {
  const client = Client.fromConnectionString(connectionString, transport);
  clients.push(client);
  return client;
}

describe.each(Object.keys(transports) as (keyof typeof transports)[])("%s", (name) => {
  const transport = transports[name];

  it("a SAS device opens, sends telemetry and shows Connected, then Disconnected once closed", async () => {
    const client = deviceClient(moduleConnectionString(hub, "amqp-dev"), transport);
    await client.open();
    await client.sendEvent(new Message(`hello over ${name}`));
    expect(await connectionState("amqp-dev")).toBe("Connected");
    await client.close();
    await eventually(() => !hub.core.identities.isConnected(hub.core.identities.find("amqp-dev")!), "disconnected");
    expect(await connectionState("amqp-dev")).toBe("Disconnected");
  });

  it("a module opens with its own token and sends telemetry", async () => {
    const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, "amqp-dev", "amqp-mod"), transport);
    clients.push(client);
    await client.open();
    await client.sendEvent(new Message("from a module"));
    expect((await registry.getModule("amqp-dev", "amqp-mod")).responseBody.connectionState).toBe("Connected");
  });

  it("a wrong key is refused at open with UnauthorizedError", async () => {
    const wrong = `HostName=localhost;DeviceId=amqp-dev;SharedAccessKey=${Buffer.alloc(32, 7).toString("base64")}`;
    const err = await deviceClient(wrong, transport)
      .open()
      .catch((e: Error) => e);
    expect((err as Error).name).toBe("UnauthorizedError");
  });

  it("renews its token on the same connection (updateSharedAccessSignature) and keeps sending", async () => {
    const key = hub.core.identities.find("amqp-dev")!.authentication.symmetricKey.primaryKey!;
    const token = (seconds: number) =>
      createSasToken("localhost/devices/amqp-dev", key, Math.floor(Date.now() / 1000) + seconds);
    const client = Client.fromSharedAccessSignature(token(60), transport);
    clients.push(client);
    await client.open();
    const connects = log.filter((line) => line.startsWith("AMQP CONNECT amqp-dev over")).length;
    const puts = log.filter((line) => / put-token amqp-dev .* 200$/.test(line)).length;
    await new Promise((resolve, reject) =>
      client.updateSharedAccessSignature(token(3600), (err) => (err ? reject(err) : resolve(undefined))),
    );
    await client.sendEvent(new Message("after renewal"));
    expect(log.filter((line) => / put-token amqp-dev .* 200$/.test(line)).length).toBeGreaterThan(puts);
    expect(log.filter((line) => line.startsWith("AMQP CONNECT amqp-dev over")).length).toBe(connects);
  });

  it("a device connects with a token of a policy holding DeviceConnect (skn=device), as on Azure", async () => {
    const policy = hub.core.policies.find("device")!;
    const token = createSasToken(
      "localhost/devices/amqp-dev",
      policy.primaryKey,
      Math.floor(Date.now() / 1000) + 600,
      "device",
    );
    const client = Client.fromSharedAccessSignature(token, transport);
    clients.push(client);
    await client.open();
    await client.sendEvent(new Message("with the device policy"));
    // The registry policy grants no DeviceConnect: refused.
    const registryPolicy = hub.core.policies.find("registryRead")!;
    const refused = Client.fromSharedAccessSignature(
      createSasToken(
        "localhost/devices/amqp-dev",
        registryPolicy.primaryKey,
        Math.floor(Date.now() / 1000) + 600,
        "registryRead",
      ),
      transport,
    );
    clients.push(refused);
    await refused.open();
    const err = await refused.sendEvent(new Message("refused")).catch((e: Error) => e);
    expect((err as Error).name).toBe("UnauthorizedError");
  });

  it("a second connection of the same device replaces the first, as on MQTT", async () => {
    // The transport alone: a Client would reconnect at once, as its retry policy says.
    const first = new transport(
      SharedAccessKeyAuthenticationProvider.fromConnectionString(moduleConnectionString(hub, "amqp-dev")),
    );
    clients.push({ close: () => new Promise((resolve) => first.disconnect(resolve)) });
    await new Promise((resolve, reject) => first.connect((err) => (err ? reject(err) : resolve(undefined))));
    const dropped = new Promise((resolve) => first.once("disconnect", resolve));
    const second = deviceClient(moduleConnectionString(hub, "amqp-dev"), transport);
    await second.open();
    await dropped;
    await second.sendEvent(new Message("from the second connection"));
    expect(await connectionState("amqp-dev")).toBe("Connected");
  });

  it("a device disabled while connected is disconnected at once, and refused after", async () => {
    const deviceId = `${name}-disabled`;
    await registry.create({ deviceId });
    const connectionString = moduleConnectionString(hub, deviceId);
    const amqp = new transport(SharedAccessKeyAuthenticationProvider.fromConnectionString(connectionString));
    clients.push({ close: () => new Promise((resolve) => amqp.disconnect(resolve)) });
    await new Promise((resolve, reject) => amqp.connect((err) => (err ? reject(err) : resolve(undefined))));
    const dropped = new Promise((resolve) => amqp.once("disconnect", resolve));
    await registry.update({ deviceId, status: "disabled" });
    await dropped;
    const err = await deviceClient(connectionString, transport)
      .open()
      .catch((e: Error) => e);
    expect((err as Error).name).toBe("UnauthorizedError");
  });

  it("X.509 devices (self-signed and CA-signed) send telemetry with their client certificate, others are refused", async () => {
    const own = await certificate(`${name}-x509`);
    await registry.create({
      deviceId: `${name}-x509`,
      authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: own.sha1 } },
    });
    await registry.create({ deviceId: `${name}-ca`, authentication: { type: "certificateAuthority" } });
    const open = async (deviceId: string, credentials: { cert: string; key: string }) => {
      const client = deviceClient(`HostName=localhost;DeviceId=${deviceId};x509=true`, transport);
      await client.setOptions({ cert: credentials.cert, key: credentials.key });
      await client.open();
      await client.sendEvent(new Message(`x509 over ${name}`));
    };
    await open(`${name}-x509`, own);
    await open(`${name}-ca`, await certificate(`${name}-ca`, ca));
    expect(await connectionState(`${name}-x509`)).toBe("Connected");
    // Stamped as certificate-authenticated, as MQTT and HTTPS stamp the same device ("Create and read IoT Hub messages").
    const stamps = (await eventsFrom([`${name}-x509`, `${name}-ca`])).map((e) =>
      JSON.parse(String(e.systemProperties!["iothub-connection-auth-method"])),
    );
    expect(stamps).toEqual([expect.objectContaining({ type: "x509" }), expect.objectContaining({ type: "x509" })]);
    const stranger = await open(`${name}-x509`, await certificate(`${name}-x509`)).catch((e: Error) => e);
    expect((stranger as Error).name).toBe("UnauthorizedError");
  });
});
