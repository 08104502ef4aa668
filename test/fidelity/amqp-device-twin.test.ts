/**
 * Device and module twins over azure-iot-device-amqp (`Amqp` and `AmqpWs`), unmodified: the twin links on
 * `/devices/{id}[/modules/{mid}]/twin` as amqp_twin_client.js opens them, against the same core as MQTT.
 */
import { Registry } from "azure-iothub";
import { Client, ModuleClient, Twin } from "azure-iot-device";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub, twinOf } from "../helpers/hub";

let hub: Hub;
let registry: Registry;
const logged: string[] = [];
const clients: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  hub = await startTestHub(undefined, { log: (line) => logged.push(line) });
  registry = Registry.fromConnectionString(hub.connectionString);
  for (const deviceId of ["amqp-dev", "ws-dev"]) {
    await registry.create({ deviceId });
    for (const moduleId of ["a", "b"]) await registry.addModule({ deviceId, moduleId });
  }
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(() => hub.stop());

function open(deviceId: string, moduleId: string | undefined, transport: unknown): Client | ModuleClient {
  const connectionString = moduleConnectionString(hub, deviceId, moduleId);
  const client = moduleId
    ? ModuleClient.fromConnectionString(connectionString, transport)
    : Client.fromConnectionString(connectionString, transport);
  clients.push(client);
  return client;
}

/** The 'properties.desired' events: the first is the whole desired state, the others patches. */
function desiredEvents(twin: Twin): any[] {
  const events: any[] = [];
  twin.on("properties.desired", (delta: any) => events.push(JSON.parse(JSON.stringify(delta))));
  return events;
}

/** The whole desired state came, and the hub took the subscription the SDK sends after it (PUT, answered 200). */
async function subscribed(events: any[], key: string): Promise<void> {
  const put = (line: string) => line.startsWith(`AMQP TWIN ${key} PUT 200`);
  const before = logged.filter(put).length;
  await eventually(() => events.length >= 1 && logged.filter(put).length > before, `${key}'s desired subscription`);
}

/** `reported.update` takes a callback only. */
const report = (twin: Twin, patch: object) =>
  new Promise<void>((resolve, reject) =>
    twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())),
  );

const patchDesired = async (deviceId: string, moduleId: string | undefined, desired: object) => {
  const twin = moduleId ? await registry.getModuleTwin(deviceId, moduleId) : await registry.getTwin(deviceId);
  const etag = (twin.responseBody as { etag: string }).etag;
  const patch = { properties: { desired } };
  return moduleId
    ? registry.updateModuleTwin(deviceId, moduleId, patch, etag)
    : registry.updateTwin(deviceId, patch, etag);
};

describe.each([
  ["Amqp", Amqp, "amqp-dev"],
  ["AmqpWs", AmqpWs, "ws-dev"],
])("over %s", (_name, transport, deviceId) => {
  describe.each([
    ["a device", undefined],
    ["a module", "a"],
  ])("%s", (_who, moduleId) => {
    it("gets its twin with the desired and reported $version the service sees", async () => {
      await patchDesired(deviceId, moduleId, { mode: "eco" });
      const client = open(deviceId, moduleId, transport);
      await client.open();
      const twin = await client.getTwin();
      const service = twinOf(hub, deviceId, moduleId);
      expect(twin.properties.desired).toMatchObject({ mode: "eco", $version: service.properties.desired.$version });
      expect(twin.properties.reported.$version).toBe(service.properties.reported.$version);
    });

    it("reports properties that the service reads with Registry.getTwin, with a growing $version", async () => {
      const client = open(deviceId, moduleId, transport);
      await client.open();
      const twin = await client.getTwin();
      const before = twinOf(hub, deviceId, moduleId).properties.reported.$version;
      await report(twin, { firmware: "1.2.3", nested: { ok: true } });
      const read = moduleId ? await registry.getModuleTwin(deviceId, moduleId) : await registry.getTwin(deviceId);
      const reported = (read.responseBody as any).properties.reported;
      expect(reported).toMatchObject({ firmware: "1.2.3", nested: { ok: true }, $version: before + 1 });
      expect(reported.$metadata.firmware.$lastUpdated).toEqual(expect.any(String));
    });

    it("receives the whole desired state first, then each patch with its $version", async () => {
      const client = open(deviceId, moduleId, transport);
      await client.open();
      const twin = await client.getTwin();
      const events = desiredEvents(twin);
      await subscribed(events, moduleId ? `${deviceId}/${moduleId}` : deviceId);
      expect(events[0]).toEqual(twin.properties.desired);
      const answer = await patchDesired(deviceId, moduleId, { target: 21, gone: null });
      const version = (answer.responseBody as any).properties.desired.$version;
      await eventually(() => events.length >= 2, "the desired patch");
      expect(events[1]).toEqual({ target: 21, gone: null, $version: version });
      expect(twin.properties.desired).toMatchObject({ target: 21, $version: version });
    });
  });

  it("sends a module's desired patch to that module only", async () => {
    const a = open(deviceId, "a", transport);
    const b = open(deviceId, "b", transport);
    await Promise.all([a.open(), b.open()]);
    const [twinA, twinB] = await Promise.all([a.getTwin(), b.getTwin()]);
    const [eventsA, eventsB] = [desiredEvents(twinA), desiredEvents(twinB)];
    await Promise.all([subscribed(eventsA, `${deviceId}/a`), subscribed(eventsB, `${deviceId}/b`)]);
    await patchDesired(deviceId, "a", { onlyFor: "a" });
    await eventually(() => eventsA.length >= 2, "module a's patch");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(eventsA[1]).toMatchObject({ onlyFor: "a" });
    expect(eventsB).toHaveLength(1);
  });

  it("refuses a reported patch the hub cannot store, the SDK's error naming the cause (status 400, FormatError)", async () => {
    const client = open(deviceId, "b", transport);
    await client.open();
    const twin = await client.getTwin();
    const err = await report(twin, { "bad.key": 1 }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // The transport wraps the twin client's error: the cause stays in the message and in amqpError.
    expect((err as Error).message).toContain("invalid property name 'bad.key'");
    expect((err as any).amqpError.name).toBe("FormatError");
    expect(twinOf(hub, deviceId, "b").properties.reported["bad.key"]).toBeUndefined();
  });
});

it("serves the same twin to a device over MQTT after it reported over AMQP", async () => {
  const overAmqp = open("amqp-dev", "b", Amqp);
  await overAmqp.open();
  await report(await overAmqp.getTwin(), { via: "amqp" });
  await overAmqp.close();
  const overMqtt = open("amqp-dev", "b", Mqtt);
  await overMqtt.open();
  expect((await overMqtt.getTwin()).properties.reported).toMatchObject({ via: "amqp" });
});

it("shows connectionState Connected while a module's AMQP connection is open", async () => {
  const client = open("amqp-dev", "b", Amqp);
  await client.open();
  await client.getTwin();
  await eventually(() => twinOf(hub, "amqp-dev", "b").connectionState === "Connected", "Connected");
  await client.close();
  await eventually(() => twinOf(hub, "amqp-dev", "b").connectionState === "Disconnected", "Disconnected");
});
