/**
 * Legal but heavy queries cannot starve other clients: each query runs in short slices and lets other work in
 * between, so a plain GET sent while ten of them run is answered before they all finish. Ten queries over 200 twins
 * are about a second of work here: against a hub that evaluates each query whole (QUERY_SLICE_MS = 1e9), the GET then
 * waits for all ten, and this test fails; it did at 100 twins too, so the margin is twofold.
 */
import { Registry } from "azure-iothub";
import { ProtocolHub, ownerToken, rest, startProtocolHub } from "../helpers/raw";
import { expectSdkClientsServed, redirectSdks } from "../helpers/sdk-probe";

const TWINS = 200;
const QUERIES = 10;
/** 500 comparisons joined by 499 ORs: about 1,000 operators, none matching, so every twin is read and tested. */
const HEAVY = `SELECT * FROM devices WHERE ${Array.from({ length: 500 }, (_, i) => `x=${i % 10}`).join(" OR ")}`;

let hub: ProtocolHub;
beforeAll(async () => {
  hub = await startProtocolHub();
  redirectSdks(hub.hub);
  for (let batch = 0; batch < TWINS / 100; batch++) {
    const devices = Array.from({ length: 100 }, (_, i) => ({ id: `fleet-${batch * 100 + i}`, importMode: "create" }));
    const response = await rest(hub.hub, "POST", "/devices", {
      token: ownerToken(hub.hub),
      body: JSON.stringify(devices),
    });
    expect(response.status).toBe(200);
  }
});
afterAll(() => hub.hub.stop());

it("a GET sent while 10 heavy queries run is answered before they all finish", async () => {
  let finished = 0;
  const queries = Array.from({ length: QUERIES }, () =>
    rest(hub.hub, "POST", "/devices/query", {
      token: ownerToken(hub.hub),
      body: JSON.stringify({ query: HEAVY }),
    }).then((response) => {
      finished++;
      return response;
    }),
  );
  // Give the hub time to take every query in: a hub that evaluates a query whole holds its loop from here on.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const registry = Registry.fromConnectionString(hub.hub.connectionString);
  const { responseBody } = await registry.get("probe");
  const finishedWhenAnswered = finished;
  const answers = await Promise.all(queries);

  expect(responseBody.deviceId).toBe("probe");
  expect(answers.map((response) => response.status)).toEqual(Array(QUERIES).fill(200));
  expect(answers.every((response) => JSON.parse(response.body).length === 0)).toBe(true);
  expect(finishedWhenAnswered).toBeLessThan(QUERIES);
  await expectSdkClientsServed(hub.hub);
}, 120_000);
