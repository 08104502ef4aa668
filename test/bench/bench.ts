/**
 * @summary `npm run bench`: desired-patch and direct-method latency over the MQTT and AMQP device transports, a twin
 * query over 10,000 twins, script start-up split into its parts, how far the hub scales, telemetry (bare MQTT, and the
 * device SDK over Mqtt and Amqp) and C2D, and one telemetry load against the hub, aedes and mosquitto (peers). Prints a
 * table and the targets; with --json also one JSON object as the last line.
 *
 * Usage: npm run bench -- [--json] [--patches N] [--calls N] [--twins N] [--modules N] [--runs N] [--rounds N]
 *                         [--only latency|methods|query|startup|scale|messaging|peers]
 * The hub runs as its own process on ephemeral ports (hub-process.ts): no privileges, no free port 443 needed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { Registry } from "azure-iothub";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import { Amqp, AmqpWs } from "azure-iot-device-amqp";
import { ensureCertificates } from "../localhub";
import { BenchHub, TSX_LOADER, startBenchHub, startBenchMessagingHub } from "./hub-process";
import { sdkTelemetryThroughput } from "./device-sdk-telemetry";
import { methodLatency, patchLatency } from "./latency";
import { Percentiles, round, sleep } from "./measure";
import { measureMessaging } from "./messaging";
import { QUERY_SQL, measureQuery } from "./query";
import { measureScale } from "./scale";
import { measureStartup } from "./startup";
import { measurePeersPart } from "./peers-report";
import { evaluateTargets, targetLines } from "./targets";

/** The transports of the desired-patch rows: name, transport, the module of the bench device, key in the JSON. */
const PATCH_TRANSPORTS = [
  ["Mqtt", Mqtt, "mqtt", "mqtt"],
  ["MqttWs", MqttWs, "ws", "mqttWs"],
  ["Amqp", Amqp, "amqp", "amqp"],
  ["AmqpWs", AmqpWs, "amqpws", "amqpWs"],
] as const;
/** The device-SDK telemetry rows: devices per transport and messages each. */
const SDK_TELEMETRY = { devices: 5, perDevice: 1000 };
const PARTS = ["latency", "methods", "query", "startup", "scale", "messaging", "peers"];
const MESSAGING_TIMEOUT_MS = 120_000;
const USAGE =
  "Usage: npm run bench -- [--json] [--patches N] [--calls N] [--twins N] [--modules N] [--runs N] [--rounds N] " +
  `[--only ${PARTS.join("|")}]`;

function readFlags() {
  try {
    const { values } = parseArgs({
      options: {
        json: { type: "boolean", default: false },
        patches: { type: "string", default: "1000" },
        calls: { type: "string", default: "1000" },
        twins: { type: "string", default: "10000" },
        only: { type: "string" },
        modules: { type: "string", default: "1000" },
        runs: { type: "string", default: "5" },
        rounds: { type: "string", default: "3" },
      },
    });
    const counts = { patches: 0, calls: 0, twins: 0, modules: 0, runs: 0, rounds: 0 };
    for (const name of Object.keys(counts) as (keyof typeof counts)[]) {
      counts[name] = Number(values[name]);
      if (!/^\d+$/.test(values[name]) || counts[name] < 1) throw new Error(`--${name} must be a whole number ≥ 1`);
    }
    if (values.only !== undefined && !PARTS.includes(values.only))
      throw new Error(`--only must be one of ${PARTS.join(", ")}`);
    return { ...counts, json: values.json, only: values.only };
  } catch (err) {
    console.error(`Error: ${(err as Error).message}. ${USAGE}`);
    process.exit(2);
  }
}

const flags = readFlags();
const log = (line: string) => console.log(line);
const line = (name: string, p: Percentiles) =>
  `   ${name.padEnd(8)} p50 ${p.p50} ms   p90 ${p.p90} ms   p99 ${p.p99} ms   max ${p.max} ms`;

async function identityString(registry: Registry, deviceId: string, moduleId?: string): Promise<string> {
  const identity = moduleId
    ? (await registry.getModule(deviceId, moduleId)).responseBody
    : (await registry.get(deviceId)).responseBody;
  const key = identity.authentication?.symmetricKey?.primaryKey;
  if (!key) throw new Error(`no key for ${deviceId}${moduleId ? `/${moduleId}` : ""}`);
  return `HostName=localhost;DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ""}SharedAccessKey=${key}`;
}

const wanted = (part: string) => (flags.only ? flags.only === part : true);
const results: Record<string, unknown> = {};

/** Latency, methods, query and start-up share one hub. */
async function measureRoundTrips(hub: BenchHub): Promise<void> {
  const registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "bench" });
  for (const [, , moduleId] of PATCH_TRANSPORTS) await registry.addModule({ deviceId: "bench", moduleId });
  for (const deviceId of ["bench-methods-mqtt", "bench-methods-amqp"]) await registry.create({ deviceId });

  if (wanted("latency")) {
    log(
      `1. Desired-patch latency, ${flags.patches} patches one after another (Registry.updateModuleTwin -> 'properties.desired')`,
    );
    const patchLatencyMs: Record<string, Percentiles> = {};
    for (const [name, transport, moduleId, key] of PATCH_TRANSPORTS) {
      const moduleString = await identityString(registry, "bench", moduleId);
      patchLatencyMs[key] = await patchLatency(registry, moduleString, transport, "bench", moduleId, flags.patches);
      log(line(name, patchLatencyMs[key]));
    }
    results.patchLatencyMs = patchLatencyMs;
  }

  if (wanted("methods")) {
    log(
      `2. Direct-method round trip, ${flags.calls} calls one after another (Client.invokeDeviceMethod -> onDeviceMethod -> answer)`,
    );
    const methodLatencyMs: Record<string, Percentiles> = {};
    for (const [name, transport, key] of [["Mqtt", Mqtt, "mqtt"] as const, ["Amqp", Amqp, "amqp"] as const]) {
      const deviceString = await identityString(registry, `bench-methods-${key}`);
      methodLatencyMs[key] = await methodLatency(hub.connectionString, deviceString, transport, flags.calls);
      log(line(name, methodLatencyMs[key]));
    }
    results.methodLatencyMs = methodLatencyMs;
  }

  if (wanted("query")) {
    log(`3. Twin query over ${flags.twins} module twins, median of ${flags.runs}: ${QUERY_SQL}`);
    const query = await measureQuery(registry, flags.twins, flags.runs);
    log(
      `   first page (${query.pageSize} twins) ${query.firstPageMs} ms; all ${query.pages} pages (${query.matched} twins) ${query.allPagesMs} ms`,
    );
    log(
      `   (setting up the ${query.twins} twins: ${query.setupSeconds} s, devices in bulk, then a module and a twin PATCH each)`,
    );
    results.queryMs = { firstPage: query.firstPageMs, allPages: query.allPagesMs };
    results.query = { twins: query.twins, matched: query.matched, pageSize: query.pageSize, sql: QUERY_SQL };
  }

  if (wanted("startup")) {
    log(`4. Script start-up: CreateModule.ts, second run (identities exist), median of ${flags.runs}`);
    const startup = measureStartup(hub.connectionString, hub.clientEnv, flags.runs);
    log(`   npx tsx CreateModule.ts                ${startup.npxTsxMs} ms`);
    log(`   tsx CreateModule.ts (no npx)           ${startup.tsxMs} ms`);
    log(`   node --import tsx CreateModule.ts      ${startup.nodeImportTsxMs} ms`);
    log(`   node --require tsx/cjs CreateModule.ts ${startup.nodeRequireTsxMs} ms`);
    log(`   node CreateModule.js (compiled)        ${startup.nodeMs} ms`);
    const s = startup.split;
    log(
      `   where it goes: npx resolution ${s.npxResolutionMs} ms, tsx's extra process ${s.tsxExtraProcessMs} ms, tsx's ESM loader ${s.tsxEsmLoaderMs} ms, tsx's CommonJS hook and transform ${s.tsxHookAndTransformMs} ms;`,
    );
    log(
      `   inside node: boot ${s.nodeBootMs} ms, loading the SDK ${s.sdkLoadMs} ms, our own code ${startup.ownCodeMs} ms, the four REST calls ${s.networkMs} ms`,
    );
    results.startup = startup;
  }
}

/** Scale runs on a hub of its own: its peak memory is then that of the fleet alone. */
async function measureHubScale(hub: BenchHub): Promise<void> {
  const registry = Registry.fromConnectionString(hub.connectionString);
  log(`5. Hub scale: ${flags.modules} modules`);
  const scale = await measureScale(registry, hub.child.pid!, flags.modules, hub.clientEnv);
  log(
    `   created ${scale.createPerSec} identities/s; all connected in ${scale.connectAllMs} ms; all patched in ${scale.patchAllMs} ms`,
  );
  log(
    `   CPU used while connecting: hub ${scale.hubConnectCpuMs} ms, the ${flags.modules} clients ${scale.clientsConnectCpuMs} ms (${os.cpus().length} cores shared)`,
  );
  log(
    `   baseline, the same number of bare TLS handshakes: ${scale.tlsOnlyAllMs} ms, hub CPU ${scale.hubTlsOnlyCpuMs} ms`,
  );
  log(`   hub peak RSS ${scale.hubPeakRssMb} MB; clients: ${scale.client}`);
  results.scale = scale;
}

/** Telemetry and C2D (messaging.ts, from the AMQP work) on a hub of its own with the AMQP edge. */
async function measureMessagingPart(hubDir: string): Promise<void> {
  const hub = await startBenchMessagingHub(path.join(hubDir, "messaging"), hubDir);
  const { 443: https, 8883: mqtt, 5671: amqp } = hub.portMap;
  log(
    `Hub (messaging): its own process, HTTPS on ${https}, MQTT on ${mqtt}, AMQP on ${amqp}, reached as 443, 8883, 5671`,
  );
  try {
    log("6. Messaging: telemetry from 10 devices read back by an Event Hubs consumer; C2D one message at a time");
    // No amqpPort: measureMessaging would replace the whole port map with 5671 alone; ours already holds all three.
    const m = await Promise.race([
      measureMessaging({
        iotHubConnectionString: hub.connectionString,
        eventHubConnectionString: hub.eventHubConnectionString,
        log: (text) => log(`   ${text}`),
      }),
      // Without this a hub whose MQTT telemetry never reaches the event log would leave the bench waiting forever.
      sleep(MESSAGING_TIMEOUT_MS).then(() =>
        Promise.reject(new Error(`the messaging part did not finish in ${MESSAGING_TIMEOUT_MS / 1000} s`)),
      ),
    ]);
    const t = m.telemetry;
    log(
      `   telemetry ${t.msgsPerSec} msgs/s; device send -> AMQP reader p50 ${t.e2eLatencyMs.p50} ms, p99 ${t.e2eLatencyMs.p99} ms`,
    );
    log(`   the same to EventHubConsumerClient: p50 ${t.sdkE2eLatencyMs.p50} ms, p99 ${t.sdkE2eLatencyMs.p99} ms`);
    log(`   C2D (Client.send -> device PUBLISH) p50 ${m.c2dLatencyMs.p50} ms, p99 ${m.c2dLatencyMs.p99} ms`);
    results.telemetry = {
      ...(results.telemetry as object),
      msgsPerSec: t.msgsPerSec,
      e2eLatencyMs: t.e2eLatencyMs,
      sdkE2eLatencyMs: t.sdkE2eLatencyMs,
    };
    results.c2dLatencyMs = m.c2dLatencyMs;
    const { devices, perDevice } = SDK_TELEMETRY;
    log(
      `   through the device SDK, Client.sendEvent from ${devices} devices x ${perDevice}, read back by EventHubConsumerClient:`,
    );
    const sdk: Record<string, unknown> = {};
    for (const [name, transport, key] of [["Mqtt", Mqtt, "mqtt"] as const, ["Amqp", Amqp, "amqp"] as const]) {
      const figures = await sdkTelemetryThroughput({
        iotHubConnectionString: hub.connectionString,
        eventHubConnectionString: hub.eventHubConnectionString,
        transport,
        prefix: `bench-sdk-${key}`,
        devices,
        perDevice,
      });
      log(
        `   ${name.padEnd(8)} ${figures.acknowledgedPerSec} msgs/s acknowledged, ${figures.readBackPerSec} msgs/s read back`,
      );
      sdk[key] = figures;
    }
    results.sdkTelemetry = sdk;
  } finally {
    await hub.stop();
  }
}

/** Starts a hub in `hubDir/name`, runs `part` against it, stops it. */
async function withHub(hubDir: string, name: string, part: (hub: BenchHub) => Promise<void>): Promise<void> {
  const hub = await startBenchHub(path.join(hubDir, name), hubDir);
  log(
    `Hub (${name}): its own process, HTTPS on ${hub.portMap[443]} and MQTT on ${hub.portMap[8883]}, reached as 443 and 8883`,
  );
  try {
    await part(hub);
  } finally {
    await hub.stop();
  }
}

export async function main(): Promise<void> {
  const hubDir = process.env.BENCH_HUB_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "bench-hub-"));
  const { caPath } = await ensureCertificates(hubDir);
  // Node trusts an extra CA only from its environment at start: run the measurements in a child that has it.
  if (!process.env.BENCH_HUB_DIR) {
    const result = spawnSync(process.execPath, ["--import", TSX_LOADER, __filename, ...process.argv.slice(2)], {
      stdio: "inherit",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath, BENCH_HUB_DIR: hubDir },
    });
    fs.rmSync(hubDir, { recursive: true, force: true });
    process.exit(result.status ?? 1);
  }
  const cpus = os.cpus();
  const loadAverage = os.loadavg().map((n) => round(n));
  log(
    `Machine: ${cpus.length} x ${cpus[0].model}, ${round(os.totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}; load average ${loadAverage.join(" ")} at the start`,
  );
  if (["latency", "methods", "query", "startup"].some(wanted)) await withHub(hubDir, "round-trips", measureRoundTrips);
  if (wanted("scale")) await withHub(hubDir, "scale", measureHubScale);
  if (wanted("messaging")) await measureMessagingPart(hubDir);
  if (wanted("peers")) await measurePeersPart(hubDir, flags.rounds, results, log);
  const targets = evaluateTargets(results);
  log("Targets (issue 19; peer figures are ratios within this run):");
  for (const text of targetLines(targets)) log(text);
  if (flags.json)
    console.log(
      JSON.stringify({ ...results, targets, machine: { cpus: cpus.length, node: process.version, loadAverage } }),
    );
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(`Error: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
