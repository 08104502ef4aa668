import { HubError } from "../localhub/core/errors";
import { type QueryPage, type QuerySources, runQuery, twinKey } from "../localhub/core/query";
import type { Json, JsonObject } from "../localhub/core/twin-document";

function twin(deviceId: string, reported: JsonObject = {}, tags?: JsonObject): JsonObject {
  return {
    deviceId,
    etag: "AAAAAAAAAAE=",
    status: "enabled",
    connectionState: "Disconnected",
    lastActivityTime: "2026-01-01T00:00:00Z",
    version: 2,
    ...(tags ? { tags } : {}),
    properties: { desired: { $version: 1 }, reported: { ...reported, $version: 1 } },
  };
}

const over = (devices: JsonObject[], modules: JsonObject[] = []): QuerySources => ({
  devices: () => devices,
  modules: () => modules,
});

/** Follows continuation tokens to the end, as the SDKs do, and returns every page. */
function allPages(query: string, sources: QuerySources, maxItemCount?: number | string): QueryPage[] {
  const pages = [runQuery(query, sources, { maxItemCount })];
  while (pages[pages.length - 1].continuation) {
    pages.push(runQuery(query, sources, { maxItemCount, continuation: pages[pages.length - 1].continuation }));
  }
  return pages;
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => twin(`dev${String(i).padStart(5, "0")}`, { i }));
const deviceIds = (items: Json[]) => items.map((t) => (t as JsonObject).deviceId);

function refusal(run: () => unknown): HubError {
  try {
    run();
  } catch (err) {
    if (err instanceof HubError) return err;
    throw err;
  }
  throw new Error("was accepted");
}

describe("twin query results", () => {
  const fleet = over([
    twin("a", { telemetryConfig: { status: "Success" }, temp: 20 }, { location: { region: "US" } }),
    twin("b", { telemetryConfig: { status: "Pending" }, temp: 30 }),
    twin("c", { telemetryConfig: { status: "Success" }, temp: "hot" }),
    twin("d", {}),
  ]);

  it("answer SELECT * with whole twins and item type twin", () => {
    const page = runQuery("SELECT * FROM devices WHERE deviceId = 'a'", fleet, {});
    expect(page.itemType).toBe("twin");
    expect(page.items).toEqual([fleet.devices()[Symbol.iterator]().next().value]);
    expect(page.continuation).toBeUndefined();
  });

  it("name a projected value after its last segment as the twin spells it, unless AS renames it", () => {
    const page = runQuery("SELECT DeviceId, LastActivityTime, tags.location.region AS loc FROM devices", fleet, {});
    expect(page.itemType).toBe("raw");
    expect(page.items[0]).toEqual({ deviceId: "a", lastActivityTime: "2026-01-01T00:00:00Z", loc: "US" });
  });

  it("leave a projected value out of the row of a twin that lacks it", () => {
    const page = runQuery("SELECT deviceId, properties.reported.temp FROM devices", fleet, {});
    expect(page.items).toEqual([
      { deviceId: "a", temp: 20 },
      { deviceId: "b", temp: 30 },
      { deviceId: "c", temp: "hot" },
      { deviceId: "d" },
    ]);
  });

  it("count twins with COUNT() AS name, answering 0 when none match", () => {
    expect(runQuery("SELECT COUNT() AS totalNumberOfDevices FROM devices", fleet, {})).toEqual({
      items: [{ totalNumberOfDevices: 4 }],
      itemType: "raw",
    });
    expect(runQuery("SELECT COUNT() AS n FROM devices WHERE deviceId = 'zz'", fleet, {}).items).toEqual([{ n: 0 }]);
  });

  it("give one row per GROUP BY value with its count, as the docs' telemetry status example", () => {
    const query = `SELECT properties.reported.telemetryConfig.status AS status, COUNT() AS numberOfDevices
      FROM devices GROUP BY properties.reported.telemetryConfig.status`;
    expect(runQuery(query, fleet, {}).items).toEqual([
      { status: "Success", numberOfDevices: 2 },
      { status: "Pending", numberOfDevices: 1 },
      { numberOfDevices: 1 },
    ]);
  });

  it("sum, average and bound numbers only, skipping values of other types", () => {
    const page = runQuery(
      "SELECT SUM(properties.reported.temp) AS s, AVG(properties.reported.temp) AS a, MIN(properties.reported.temp) AS lo, MAX(properties.reported.temp) AS hi FROM devices",
      fleet,
      {},
    );
    expect(page.items).toEqual([{ s: 50, a: 25, lo: 20, hi: 30 }]);
  });
});

describe("twin query paging", () => {
  const big = over(numbered(250));

  it("serve 100 twins a page by default, with a continuation only while more remain", () => {
    const pages = allPages("SELECT * FROM devices", big);
    expect(pages.map((p) => p.items.length)).toEqual([100, 100, 50]);
    expect(pages.map((p) => p.continuation === undefined)).toEqual([false, false, true]);
    expect(pages.flatMap((p) => deviceIds(p.items))).toEqual(deviceIds(numbered(250)));
  });

  it("honour x-ms-max-item-count up to 100, header strings included", () => {
    expect(allPages("SELECT * FROM devices", big, "40").map((p) => p.items.length)).toEqual([
      40, 40, 40, 40, 40, 40, 10,
    ]);
    expect(allPages("SELECT * FROM devices", big, 1000).map((p) => p.items.length)).toEqual([100, 100, 50]);
  });

  it("refuse an x-ms-max-item-count that is not a whole number from 1", () => {
    for (const bad of [0, -1, 2.5, "ten", "1e3"]) {
      const err = refusal(() => runQuery("SELECT * FROM devices", big, { maxItemCount: bad }));
      expect(err.status).toBe(400);
      expect(err.message).toMatch(/x-ms-max-item-count must be a whole number from 1 to 100/);
    }
  });

  it("keep TOP n across pages", () => {
    const pages = allPages("SELECT TOP 150 deviceId FROM devices WHERE properties.reported.i >= 10", big, 60);
    expect(pages.map((p) => p.items.length)).toEqual([60, 60, 30]);
    expect(pages[0].items[0]).toEqual({ deviceId: "dev00010" });
    expect(pages[2].continuation).toBeUndefined();
  });

  it("continue after the last twin sent when twins are removed between pages", () => {
    const devices = numbered(10);
    const sources = over(devices);
    const first = runQuery("SELECT * FROM devices", sources, { maxItemCount: 4 });
    devices.splice(0, 2); // two twins already sent are deleted
    const second = runQuery("SELECT * FROM devices", sources, { maxItemCount: 4, continuation: first.continuation });
    expect(deviceIds(second.items)).toEqual(["dev00004", "dev00005", "dev00006", "dev00007"]);
  });

  it("page aggregate rows too", () => {
    const grouped = over(numbered(7).map((t, i) => ({ ...t, tags: { bucket: i } })));
    const pages = allPages("SELECT tags.bucket AS b, COUNT() AS n FROM devices GROUP BY tags.bucket", grouped, 3);
    expect(pages.map((p) => p.items.length)).toEqual([3, 3, 1]);
    expect(pages.flatMap((p) => p.items)).toEqual([0, 1, 2, 3, 4, 5, 6].map((b) => ({ b, n: 1 })));
  });

  it("refuse a continuation token that this hub did not issue for this query", () => {
    const { continuation } = runQuery("SELECT * FROM devices", big, {});
    for (const [token, why] of [
      ["not-a-token", /not a token this hub issued/],
      [continuation!, /issued for another query/],
      ["x".repeat(2000), /too long/],
      [Buffer.from(JSON.stringify({ q: "?" })).toString("base64url"), /issued for another query/],
    ] as const) {
      const query = token === continuation ? "SELECT deviceId FROM devices" : "SELECT * FROM devices";
      const err = refusal(() => runQuery(query, big, { continuation: token }));
      expect(err.status).toBe(400);
      expect(err.message).toMatch(why);
    }
  });

  it("read only the twins a page needs from ordered sources, and page them as unordered ones", () => {
    const devices = numbered(1000);
    let read = 0;
    const ordered: QuerySources = {
      *devices(after = "") {
        for (const t of devices) if (twinKey(t.deviceId as string) > after) yield (read++, t);
      },
      modules: () => [],
      ordered: true,
    };
    const query = "SELECT deviceId FROM devices WHERE properties.reported.i % 2 = 0";
    const first = runQuery(query, ordered, { maxItemCount: 10 });
    expect(read).toBe(21); // ten even twins, and the next even one to know that more remain
    const unordered = over([...devices].reverse());
    expect(allPages(query, ordered, 100).map((p) => p.items)).toEqual(
      allPages(query, unordered, 100).map((p) => p.items),
    );
    expect(first.items).toEqual(allPages(query, unordered, 10)[0].items);
  });

  it("query module twins in device then module order", () => {
    const modules = [
      { ...twin("d2"), moduleId: "b" },
      { ...twin("d1"), moduleId: "z" },
      { ...twin("d2"), moduleId: "a" },
    ];
    const items = runQuery("SELECT deviceId, moduleId FROM devices.modules", over([], modules), {}).items;
    expect(items).toEqual([
      { deviceId: "d1", moduleId: "z" },
      { deviceId: "d2", moduleId: "a" },
      { deviceId: "d2", moduleId: "b" },
    ]);
  });
});
