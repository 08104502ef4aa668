/** Twin queries with the real service SDK: registry.createQuery, paged with nextAsTwin() and next(). */
import { Registry } from "azure-iothub";
import { ModuleClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { HeldBackStore } from "../helpers/held-back-store";
import { moduleConnectionString, policyToken, rawRequest, startTestHub, tempDir } from "../helpers/hub";

const API = "?api-version=2021-04-12";
const DEVICES = 25;
let hub: Hub;
let registry: Registry;

const deviceId = (i: number) => `q-${String(i).padStart(2, "0")}`;

const connectionStringFor = (policyName: string) => {
  const policy = hub.core.policies.find(policyName)!;
  return `HostName=${hub.hostName};SharedAccessKeyName=${policyName};SharedAccessKey=${policy.primaryKey}`;
};

describe("twin queries", () => {
  beforeAll(async () => {
    hub = await startTestHub();
    registry = Registry.fromConnectionString(hub.connectionString);
    await registry.addDevices(Array.from({ length: DEVICES }, (_, i) => ({ deviceId: deviceId(i) })));
    for (let i = 0; i < 6; i++) {
      const region = i % 2 ? "EU" : "US";
      await registry.updateTwin(deviceId(i), { tags: { location: { region } } }, "*");
    }
    await registry.addModule({ deviceId: deviceId(0), moduleId: "scanner" });
    await registry.addModule({ deviceId: deviceId(1), moduleId: "scanner" });
    // One module reports over MQTT, so the query sees what a real device wrote.
    const client = ModuleClient.fromConnectionString(moduleConnectionString(hub, deviceId(1), "scanner"), Mqtt);
    await client.open();
    const twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ status: "scanning" }, (err?: Error) => (err ? reject(err) : resolve())),
    );
    await client.close();
  });
  afterAll(() => hub.stop());

  it("page through every device twin with nextAsTwin until the continuation is gone", async () => {
    const query = registry.createQuery("SELECT * FROM devices", 10);
    const pages: string[][] = [];
    while (query.hasMoreResults) {
      const { result } = await query.nextAsTwin();
      pages.push(result.map((twin) => twin.deviceId));
      expect(typeof result[0].update).toBe("function"); // real Twin objects, bound to the registry
    }
    expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pages.flat()).toEqual(Array.from({ length: DEVICES }, (_, i) => deviceId(i)));
    expect(query.continuationToken).toBeUndefined();
  });

  it("filter twins on tags and answer x-ms-item-type Twin", async () => {
    const { result, message } = await registry
      .createQuery("SELECT * FROM devices WHERE tags.location.region = 'US' AND status = 'enabled'")
      .nextAsTwin();
    expect(result.map((t) => t.deviceId)).toEqual([deviceId(0), deviceId(2), deviceId(4)]);
    expect(result[0].tags).toEqual({ location: { region: "US" } });
    // As Azure spells it: azure-sdk-for-net SessionRecords ModulesClient_Query_GetTwins.json.
    expect(message.headers["x-ms-item-type"]).toBe("Twin");
  });

  it("find module twins by a property the module reported over MQTT", async () => {
    const { result } = await registry
      .createQuery("SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning'")
      .nextAsTwin();
    expect(result.map((t) => `${t.deviceId}/${t.moduleId}`)).toEqual([`${deviceId(1)}/scanner`]);
  });

  it("answer projections and COUNT() GROUP BY as raw JSON through next()", async () => {
    const projection = await registry
      .createQuery("SELECT deviceId, tags.location.region AS region FROM devices", 2)
      .next();
    expect(projection.result).toEqual([
      { deviceId: deviceId(0), region: "US" },
      { deviceId: deviceId(1), region: "EU" },
    ]);
    expect(projection.message.headers["x-ms-item-type"]).toBe("Raw");

    const groups = await registry
      .createQuery("SELECT tags.location.region AS region, COUNT() AS n FROM devices GROUP BY tags.location.region")
      .next();
    expect(groups.result).toEqual(
      expect.arrayContaining([{ region: "US", n: 3 }, { region: "EU", n: 3 }, { n: DEVICES - 6 }]),
    );
    expect(groups.result).toHaveLength(3);
  });

  it("stop at TOP n across pages", async () => {
    const query = registry.createQuery("SELECT TOP 7 deviceId FROM devices", 3);
    const counts: number[] = [];
    // The SDK's promise form of next() forgets the stored token (it restarts at page one): pass it, as users must.
    while (query.hasMoreResults) counts.push((await query.next(query.continuationToken)).result.length);
    expect(counts).toEqual([3, 3, 1]);
  });

  it("refuse a query the hub does not support with 400 and a line naming it", async () => {
    const err = await registry
      .createQuery("SELECT * FROM devices ORDER BY deviceId")
      .next()
      .then(
        () => undefined,
        (e: any) => e,
      );
    expect(err?.name).toBe("ArgumentError");
    expect(err.responseBody).toMatch(/ORDER is not supported in twin queries/);
  });

  it("let the registryRead policy query, and refuse a policy with DeviceConnect only", async () => {
    const reader = Registry.fromConnectionString(connectionStringFor("registryRead"));
    expect((await reader.createQuery("SELECT COUNT() AS n FROM devices").next()).result).toEqual([{ n: DEVICES }]);
    const device = Registry.fromConnectionString(connectionStringFor("device"));
    const err = await device
      .createQuery("SELECT * FROM devices")
      .next()
      .catch((e: any) => e);
    expect(err?.name).toBe("UnauthorizedError");
  });

  it("refuse a continuation token from another query with 400", async () => {
    const first = await rawRequest("POST", `/devices/query${API}`, {
      authorization: policyToken(hub, "iothubowner"),
      headers: { "x-ms-max-item-count": "5" },
      body: JSON.stringify({ query: "SELECT * FROM devices" }),
    });
    const token = first.headers["x-ms-continuation"] as string;
    expect(token).toBeTruthy();
    const second = await rawRequest("POST", `/devices/query${API}`, {
      authorization: policyToken(hub, "iothubowner"),
      headers: { "x-ms-continuation": token },
      body: JSON.stringify({ query: "SELECT deviceId FROM devices" }),
    });
    expect(second.status).toBe(400);
    expect(second.headers["iothub-errorcode"]).toBe("ArgumentInvalid");
    expect(JSON.parse(second.body).Message).toMatch(/issued for another query/);
  });

  it("refuse a body without a query string with 400 in the hub's error format", async () => {
    for (const body of ["{}", '{"query": 5}', "[]", "not json"]) {
      const response = await rawRequest("POST", `/devices/query${API}`, {
        authorization: policyToken(hub, "iothubowner"),
        body,
      });
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:ArgumentInvalid;/);
    }
  });
});

it("answers a query only once the twins it shows are durable", async () => {
  // Outside the suite above: this one needs a hub with a store of its own.
  const dataDir = tempDir();
  const store = new HeldBackStore();
  const slow = await startTestHub(dataDir, { store });
  const inFlight: Promise<unknown>[] = [];
  try {
    const service = Registry.fromConnectionString(slow.connectionString);
    await service.create({ deviceId: "slow-disk" });
    store.hold();
    const update = service.updateTwin("slow-disk", { tags: { held: 1 } }, "*");
    let answered = false;
    const query = service
      .createQuery("SELECT * FROM devices WHERE tags.held = 1")
      .nextAsTwin()
      .then((r) => ((answered = true), r));
    inFlight.push(update, query);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    store.release();
    await update;
    expect((await query).result.map((t) => t.deviceId)).toEqual(["slow-disk"]);
  } finally {
    // Whatever happened, let held-back requests finish before the hub stops under them.
    store.release();
    await Promise.allSettled(inFlight);
    await slow.stop();
  }
});
