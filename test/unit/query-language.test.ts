import { HubError } from "../localhub/core/errors";
import { type QuerySources, runQuery } from "../localhub/core/query";
import type { JsonObject } from "../localhub/core/twin-document";

/** A twin as GET /twins returns it, with only the parts a test sets. */
function twin(
  deviceId: string,
  parts: { tags?: JsonObject; reported?: JsonObject; desired?: JsonObject } & JsonObject = {},
) {
  const { tags, reported = {}, desired = {}, ...top } = parts;
  return {
    deviceId,
    etag: "AAAAAAAAAAE=",
    status: "enabled",
    connectionState: "Disconnected",
    version: 2,
    ...top,
    ...(tags ? { tags } : {}),
    properties: {
      desired: { ...desired, $metadata: { $lastUpdated: "2026-01-01T00:00:00Z" }, $version: 1 },
      reported: { ...reported, $metadata: { $lastUpdated: "2026-01-01T00:00:00Z" }, $version: 1 },
    },
  } as JsonObject;
}

const fleet: JsonObject[] = [
  twin("d1", {
    tags: { location: { region: "US", plant: "Redmond43" } },
    reported: { connectivity: "wifi", freq: 300 },
  }),
  twin("d2", {
    tags: { location: { region: "EU" } },
    reported: { connectivity: "wired", freq: 30 },
    status: "disabled",
  }),
  twin("d3", { reported: { connectivity: "cellular", freq: "60", flag: null } }),
  twin("d4", { tags: { [`group`]: "blue" }, reported: { config: { a: 1 } }, connectionState: "Connected" }),
];
const modules: JsonObject[] = [
  { ...twin("d1", { reported: { status: "scanning" } }), moduleId: "m1" },
  { ...twin("d2", { reported: { status: "scanning" } }), moduleId: "m1" },
  { ...twin("d2", { reported: { status: "idle" } }), moduleId: "m2" },
];
const sources: QuerySources = { devices: () => fleet, modules: () => modules };

const ids = (query: string) =>
  runQuery(query, sources, {}).items.map((t) => {
    const { deviceId, moduleId } = t as { deviceId: string; moduleId?: string };
    return moduleId ? `${deviceId}/${moduleId}` : deviceId;
  });

function refusal(query: unknown): HubError {
  try {
    runQuery(query, sources, {});
  } catch (err) {
    if (err instanceof HubError) return err;
    throw err;
  }
  throw new Error(`query was accepted: ${String(query)}`);
}

describe("twin query filters", () => {
  it("return every device twin for SELECT * FROM devices, in device id order", () => {
    expect(ids("SELECT * FROM devices")).toEqual(["d1", "d2", "d3", "d4"]);
  });

  it("filter on tags, reported properties and top-level fields with AND, OR and parentheses", () => {
    expect(ids("SELECT * FROM devices WHERE tags.location.region = 'US'")).toEqual(["d1"]);
    expect(ids("SELECT * FROM devices WHERE tags.location.region = 'US' AND properties.reported.freq >= 60")).toEqual([
      "d1",
    ]);
    expect(ids(`SELECT * FROM devices WHERE status = "disabled" OR connectionState = 'Connected'`)).toEqual([
      "d2",
      "d4",
    ]);
    expect(
      ids(
        "SELECT * FROM devices WHERE (tags.location.region = 'US' OR tags.location.region = 'EU') AND status = 'enabled'",
      ),
    ).toEqual(["d1"]);
  });

  it("compare numbers and strings with = != <> < <= > >=, never a number with a string", () => {
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq > 30")).toEqual(["d1"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq <= 30")).toEqual(["d2"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq = 60")).toEqual([]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq = '60'")).toEqual(["d3"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq != 300")).toEqual(["d2", "d3"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq <> 300")).toEqual(["d2", "d3"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.connectivity < 'w'")).toEqual(["d3"]);
  });

  it("leave out twins that lack the compared property, even under NOT", () => {
    expect(ids("SELECT * FROM devices WHERE tags.location.region != 'US'")).toEqual(["d2"]);
    expect(ids("SELECT * FROM devices WHERE NOT (tags.location.region = 'US')")).toEqual(["d2"]);
  });

  it("compare only primitives: an object property matches no comparison", () => {
    expect(ids("SELECT * FROM devices WHERE properties.reported.config = properties.reported.config")).toEqual([]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.config != 1")).toEqual([]);
  });

  it("match IN and NIN lists of constants", () => {
    expect(ids("SELECT * FROM devices WHERE properties.reported.connectivity IN ['wired', 'wifi']")).toEqual([
      "d1",
      "d2",
    ]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.connectivity NIN ['wired', 'wifi']")).toEqual(["d3"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq IN [30, 300]")).toEqual(["d1", "d2"]);
  });

  it("tell defined properties (null included) from missing ones with IS_DEFINED", () => {
    expect(ids("SELECT * FROM devices WHERE is_defined(properties.reported.flag)")).toEqual(["d3"]);
    expect(ids("SELECT * FROM devices WHERE IS_DEFINED(tags.location)")).toEqual(["d1", "d2"]);
    expect(ids("SELECT * FROM devices WHERE NOT IS_DEFINED(tags)")).toEqual(["d3"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.flag = null")).toEqual(["d3"]);
  });

  it("match string prefixes and suffixes with STARTSWITH and ENDSWITH", () => {
    expect(ids("SELECT * FROM devices WHERE STARTSWITH(properties.reported.connectivity, 'wi')")).toEqual(["d1", "d2"]);
    expect(ids("SELECT * FROM devices WHERE endswith(properties.reported.connectivity, 'ed')")).toEqual(["d2"]);
  });

  it("read $version, escaped [[names]], true/false and hexadecimal, signed and escaped constants", () => {
    expect(ids("SELECT * FROM devices WHERE properties.desired.$version = 1 AND version = 0x2")).toHaveLength(4);
    expect(ids("SELECT * FROM devices WHERE tags.[[group]] = 'blue'")).toEqual(["d4"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq > -1 AND true")).toEqual(["d1", "d2"]);
    expect(ids("SELECT * FROM devices WHERE tags.location.plant = 'Redmond\\u00343'")).toEqual(["d1"]);
    expect(ids("SELECT * FROM devices WHERE properties.reported.freq * 2 = 600")).toEqual(["d1"]);
  });

  it("match property names without regard to case, and accept the devices. prefix", () => {
    expect(ids("SELECT * FROM devices WHERE Tags.Location.Region = 'US'")).toEqual(["d1"]);
    expect(ids("SELECT * FROM devices WHERE devices.status = 'disabled'")).toEqual(["d2"]);
  });

  it("query module twins FROM devices.modules, filtered by device id and reported status", () => {
    expect(ids("SELECT * FROM devices.modules")).toEqual(["d1/m1", "d2/m1", "d2/m2"]);
    expect(
      ids("SELECT * FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['d2', 'd9']"),
    ).toEqual(["d2/m1"]);
    expect(ids("SELECT * FROM devices.modules WHERE devices.modules.moduleId = 'm2'")).toEqual(["d2/m2"]);
    expect(ids("SELECT * FROM devices.modules WHERE devices.deviceId = 'd1'")).toEqual(["d1/m1"]);
  });
});

describe("twin queries the local hub refuses with 400", () => {
  it.each(
    [
      ["SELECT * FROM devices.jobs", /devices.jobs is not supported/],
      ["SELECT * FROM devices ORDER BY deviceId", /ORDER is not supported/],
      ["SELECT * FROM devices WHERE CONTAINS(deviceId, 'd')", /CONTAINS\(\) is a message-routing function/],
      ["SELECT * FROM devices WHERE STARTS_WITH(deviceId, 'd')", /STARTS_WITH\(\) is a message-routing function/],
      ["SELECT * FROM devices WHERE tags.group = 'blue'", /'group' is a keyword .* \[\[group\]\]/],
      ["SELECT * FROM devices WHERE deviceId NOT IN ['d1']", /write NIN/],
      ["SELECT * FROM devices WHERE deviceId = ['d1']", /only between primitive values/],
      ["SELECT * FROM devices WHERE deviceId IN [tags.x]", /only constants/],
      ["SELECT * FROM things", /expected devices or devices.modules at column 15/],
      ["SELECT * FROM devices WHERE deviceId = 'd1", /never closed/],
      ["SELECT * FROM devices WHERE deviceId = 'd\\x'", /unsupported escape/],
      ["SELECT * FROM devices WHERE", /expected a property name at column 28, found the end of the query/],
      ["SELECT COUNT() FROM devices", /COUNT\(\) needs a name: write COUNT\(\) AS name/],
      ["SELECT * FROM devices GROUP BY status", /SELECT \* cannot be grouped/],
      ["SELECT status, COUNT() AS n FROM devices", /'status' must be an aggregate or the GROUP BY path/],
      [
        "SELECT COUNT() AS n FROM devices.modules GROUP BY moduleId",
        /GROUP BY is supported only when querying device twins/,
      ],
      ["SELECT tags.x, properties.reported.x FROM devices", /two selected values are named 'x'/],
      ["SELECT TOP 1.5 * FROM devices", /TOP needs a whole number/],
      [
        `40 nested parentheses`,
        "SELECT * FROM devices WHERE " + "(".repeat(40) + "true" + ")".repeat(40),
        /nested deeper than 32/,
      ],
      [
        `5,000 minus signs`,
        "SELECT * FROM devices WHERE deviceId = " + "-".repeat(5000) + "1",
        /nested deeper than 32/,
      ],
      [`a chain of 1,001 ORs`, "SELECT * FROM devices WHERE 1" + " OR 1".repeat(1001), /more than 1000 operators/],
      [`a NUL character`, "SELECT * FROM devices WHERE \u0000", /unexpected character U\+0000 at column 29/],
      [
        `a query of 8,241 characters`,
        `SELECT * FROM devices WHERE deviceId = '${"x".repeat(8200)}'`,
        /8241 characters long; at most 8192/,
      ],
    ].map((row) => (row.length === 2 ? [row[0], ...row] : row)),
  )("%s", (_label, query, message) => {
    const err = refusal(query);
    expect(err.status).toBe(400);
    expect(err.code).toBe("ArgumentInvalid");
    expect(err.message).toMatch(message);
  });

  it("refuses a missing or empty query text with a line that shows the expected body", () => {
    for (const body of [undefined, "", "   ", 42]) {
      expect(refusal(body).message).toMatch(/send a JSON body \{"query": "SELECT \* FROM devices"\}/);
    }
  });
});
