/**
 * @summary A filtered twin query over many twins, as Azure IoT Explorer or a fleet dashboard sends it: the first page,
 * and every page to the end, through `registry.createQuery(sql, pageSize).nextAsTwin()`.
 */
import { performance } from "node:perf_hooks";
import { Registry } from "azure-iothub";
import { inParallel, median, round } from "./measure";

const BULK = 100; // the most devices one POST /devices may create, on Azure and on the local hub
const MODULES_PER_DEVICE = 50; // the most modules a device may have, on Azure and on the local hub
const PAGE_SIZE = 100;
const SITES = ["a", "b", "c"];

/**
 * Module twins, as in the tutorial: devices by bulk POST /devices (100 per call), modules one call each. Tags and
 * desired properties are set by one twin PATCH per module from the service; reported properties would need each
 * module to connect over MQTT (the scale part measures that), and the query engine reads every section alike.
 */
export const QUERY_SQL = "SELECT * FROM devices.modules WHERE properties.desired.x > 5 AND tags.site = 'a'";

/** Creates `count` modules `query-{d}/m{i}`, each with `tags.site` and `properties.desired.x`; returns the ms taken. */
async function createTwins(registry: Registry, count: number): Promise<number> {
  const started = performance.now();
  const modules = Array.from({ length: count }, (_, i) => ({
    deviceId: `query-${Math.floor(i / MODULES_PER_DEVICE)}`,
    moduleId: `m${i % MODULES_PER_DEVICE}`,
    i,
  }));
  const devices = [...new Set(modules.map((m) => m.deviceId))];
  const batches = Array.from({ length: Math.ceil(devices.length / BULK) }, (_, b) =>
    devices.slice(b * BULK, (b + 1) * BULK),
  );
  await inParallel(batches, 4, async (batch) => {
    const { responseBody } = await registry.addDevices(batch.map((deviceId) => ({ deviceId })));
    if (!responseBody.isSuccessful) throw new Error(`bulk create failed: ${JSON.stringify(responseBody.errors[0])}`);
  });
  await inParallel(modules, 16, ({ deviceId, moduleId }) => registry.addModule({ deviceId, moduleId }));
  await inParallel(modules, 16, ({ deviceId, moduleId, i }) =>
    registry.updateModuleTwin(
      deviceId,
      moduleId,
      { tags: { site: SITES[i % 3] }, properties: { desired: { x: i % 10 } } },
      "*",
    ),
  );
  return performance.now() - started;
}

/** One run of the query: ms to the first page, ms to the last, and how many twins matched. */
async function runQuery(registry: Registry): Promise<{ firstPageMs: number; allPagesMs: number; matched: number }> {
  const started = performance.now();
  const query = registry.createQuery(QUERY_SQL, PAGE_SIZE);
  let matched = (await query.nextAsTwin()).result.length;
  const firstPageMs = performance.now() - started;
  while (query.hasMoreResults) matched += (await query.nextAsTwin()).result.length;
  return { firstPageMs, allPagesMs: performance.now() - started, matched };
}

/** `twins` module twins, then the query `runs` times after one warm-up; medians. */
export async function measureQuery(registry: Registry, twins: number, runs: number) {
  const setupMs = await createTwins(registry, twins);
  const expected = Array.from({ length: twins }, (_, i) => i).filter((i) => i % 10 > 5 && i % 3 === 0).length;
  const results = [];
  for (let run = 0; run <= runs; run++) {
    const result = await runQuery(registry);
    if (result.matched !== expected) throw new Error(`the query found ${result.matched} twins, not ${expected}`);
    if (run > 0) results.push(result);
  }
  return {
    twins,
    matched: expected,
    pageSize: PAGE_SIZE,
    pages: Math.ceil(expected / PAGE_SIZE),
    firstPageMs: round(median(results.map((r) => r.firstPageMs)), 1),
    allPagesMs: round(median(results.map((r) => r.allPagesMs)), 1),
    setupSeconds: round(setupMs / 1000, 1),
  };
}
