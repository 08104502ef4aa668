/**
 * @summary `npm run bench`: desired-patch latency over MQTT and MQTT/WebSockets, script start-up split into its parts,
 * and how far the local hub scales. Starts its own hub as a separate process (so that its memory is its own) and
 * prints a table; with --json also one JSON object as the last line.
 *
 * Usage: npm run bench -- [--json] [--patches N] [--modules N] [--runs N] [--only latency|startup|scale]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChildProcess, execFileSync, fork, spawn, spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Registry } from "azure-iothub";
import { ModuleClient, Twin } from "azure-iot-device";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import { createSasToken } from "../localhub/core/sas";
import { ensureCertificates } from "../localhub/certs";
import type { FleetMember } from "./fleet";

const ROOT = path.resolve(__dirname, "../..");
const TSX_LOADER = require.resolve("tsx");

const { values: flags } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    patches: { type: "string", default: "1000" },
    only: { type: "string" },
    modules: { type: "string", default: "1000" },
    runs: { type: "string", default: "5" },
  },
});
const PATCHES = Number(flags.patches);
const MODULES = Number(flags.modules);
const RUNS = Number(flags.runs);
const log = (line: string) => console.log(line);

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function percentiles(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(sorted[sorted.length - 1]) };
}

/** Wall time of a command in ms, the median of `RUNS` runs after one warm-up. */
function wallTime(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const times: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const started = performance.now();
    const result = spawnSync(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    const elapsed = performance.now() - started;
    if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr}`);
    if (i > 0) times.push(elapsed);
  }
  return median(times);
}

/** CPU time (user + system) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime and stime, in clock ticks of 1/100 s
}

/** Peak resident memory of a process, from the kernel's high-water mark. */
function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return round(Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024, 1);
}

async function startHubProcess(dataDir: string): Promise<{ child: ChildProcess; connectionString: string }> {
  const child = spawn(
    process.execPath,
    ["--import", TSX_LOADER, path.join(ROOT, "test/localhub/cli.ts"), "--data", dataDir, "--quiet"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      if (/ready/.test(output)) resolve();
    });
    child.on("exit", (code) => reject(new Error(`the hub exited with code ${code}: ${output}`)));
  });
  const env = fs.readFileSync(path.join(dataDir, "env"), "utf8");
  return { child, connectionString: /IOTHUB_CONNECTION_STRING="([^"]+)"/.exec(env)![1] };
}

// ---------------------------------------------------------------- 1. desired-patch latency

async function patchLatency(
  registry: Registry,
  moduleString: string,
  transport: unknown,
  deviceId: string,
  moduleId: string,
) {
  const client = ModuleClient.fromConnectionString(moduleString, transport);
  await client.open();
  const twin: Twin = await client.getTwin();
  let waiting: { seq: number; resolve: (at: number) => void } | undefined;
  twin.on("properties.desired", (delta: { seq?: number }) => {
    if (waiting && delta.seq === waiting.seq) waiting.resolve(performance.now());
  });
  await twin.get(); // after the listener subscribed: from here on every patch reaches it
  const samples: number[] = [];
  const warmup = 50;
  for (let seq = 1; seq <= PATCHES + warmup; seq++) {
    const arrived = new Promise<number>((resolve) => (waiting = { seq, resolve }));
    const started = performance.now();
    await registry.updateModuleTwin(deviceId, moduleId, { properties: { desired: { seq } } }, "*");
    const at = await Promise.race([
      arrived,
      sleep(5000).then(() => Promise.reject(new Error(`desired patch ${seq} never reached the module`))),
    ]);
    if (seq > warmup) samples.push(at - started);
  }
  // The SDK's close can hang: do not let it stall the benchmark.
  await Promise.race([client.close(), sleep(3000)]);
  return percentiles(samples);
}

// ---------------------------------------------------------------- 2. script start-up

function measureStartup(connectionString: string, caPath: string) {
  // Inside the project, so that the empty scripts are CommonJS like ours and the compiled ones find node_modules.
  const work = path.join(ROOT, "test", "bench", ".tmp");
  const build = path.join(work, "build");
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  // The same script compiled to JavaScript, next to node_modules so that require() finds the SDKs.
  execFileSync(process.execPath, [
    require.resolve("typescript/bin/tsc"),
    "--outDir",
    build,
    "--module",
    "commonjs",
    "--target",
    "ES2022",
    "--esModuleInterop",
    "--skipLibCheck",
    "--rootDir",
    ROOT,
    path.join(ROOT, "CreateModule.ts"),
  ]);
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_EXTRA_CA_CERTS: caPath,
    IOTHUB_CONNECTION_STRING: connectionString,
  };
  const noopJs = path.join(work, "noop.js");
  fs.writeFileSync(noopJs, "");
  const tsxBin = path.join(ROOT, "node_modules", ".bin", "tsx");
  const script = path.join(ROOT, "CreateModule.ts");
  const compiled = path.join(build, "CreateModule.js");
  const node = process.execPath;

  // Each way of starting the same script; the differences between neighbours are what each layer adds.
  const npxTsxMs = wallTime("npx", ["tsx", script], env, ROOT);
  const tsxMs = wallTime(tsxBin, [script], env, ROOT);
  const nodeImportTsxMs = wallTime(node, ["--import", TSX_LOADER, script], env, ROOT);
  const nodeMs = wallTime(node, [compiled], env, ROOT);
  const nodeBootMs = wallTime(node, [noopJs], env, ROOT);

  // Inside one process: what loading the SDKs, our own code and the network calls each take.
  const probe = `
    const { performance } = require("node:perf_hooks");
    const t0 = performance.now();
    const { Registry } = require("azure-iothub");
    const t1 = performance.now();
    const config = require(${JSON.stringify(path.join(build, "config.js"))});
    const script = require(${JSON.stringify(compiled)});
    const settings = config.readServiceConfig();
    config.buildModuleConnectionString(settings.hostName, settings.deviceId, settings.moduleId, "a2V5");
    const t2 = performance.now();
    const registry = Registry.fromConnectionString(settings.connectionString);
    (async () => {
      await registry.create({ deviceId: settings.deviceId }).catch((e) => { if (!script.isAlreadyExists(e)) throw e; });
      await registry.get(settings.deviceId);
      await registry.addModule({ deviceId: settings.deviceId, moduleId: settings.moduleId }).catch((e) => { if (!script.isAlreadyExists(e)) throw e; });
      await registry.getModule(settings.deviceId, settings.moduleId);
      const t3 = performance.now();
      console.log(JSON.stringify({ sdkLoadMs: t1 - t0, ownCodeMs: t2 - t1, networkMs: t3 - t2 }));
    })();`;
  const probes = Array.from(
    { length: RUNS },
    () =>
      JSON.parse(execFileSync(node, ["-e", probe], { env, cwd: ROOT }).toString()) as {
        sdkLoadMs: number;
        ownCodeMs: number;
        networkMs: number;
      },
  );
  fs.rmSync(work, { recursive: true, force: true });
  return {
    npxTsxMs: round(npxTsxMs, 0),
    tsxMs: round(tsxMs, 0),
    nodeImportTsxMs: round(nodeImportTsxMs, 0),
    nodeMs: round(nodeMs, 0),
    split: {
      npxResolutionMs: round(npxTsxMs - tsxMs, 0),
      tsxExtraProcessMs: round(tsxMs - nodeImportTsxMs, 0),
      tsxLoaderAndTransformMs: round(nodeImportTsxMs - nodeMs, 0),
      nodeBootMs: round(nodeBootMs, 0),
      sdkLoadMs: round(median(probes.map((p) => p.sdkLoadMs)), 1),
      networkMs: round(median(probes.map((p) => p.networkMs)), 1),
    },
    ownCodeMs: round(median(probes.map((p) => p.ownCodeMs)), 1),
  };
}

// ---------------------------------------------------------------- 3. hub scale

/** Connects, subscribes to desired patches, and resolves once subscribed; calls `onPatch` for each patch. */
/** Starts `count` fleet processes (test/bench/fleet.ts) and returns a way to talk to all of them at once. */
function startFleets(count: number) {
  const fleets = Array.from({ length: count }, () =>
    fork(path.join(__dirname, "fleet.ts"), [], {
      execArgv: ["--import", TSX_LOADER],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  /** Sends each fleet its share and resolves when every fleet has answered with `key`. */
  const all = (key: "connected" | "patched", shares?: FleetMember[][], bare = false) =>
    Promise.all(
      fleets.map(
        (fleet, i) =>
          new Promise<void>((resolve, reject) => {
            const onMessage = (m: Record<string, number>) => {
              if (m[key] === undefined) return;
              fleet.off("message", onMessage);
              resolve();
            };
            fleet.on("message", onMessage);
            fleet.once("exit", (code) => reject(new Error(`a client fleet exited with code ${code}`)));
            if (shares) fleet.send({ connect: shares[i], bare });
          }),
      ),
    );
  const cpu = () => fleets.reduce((sum, fleet) => sum + cpuMs(fleet.pid!), 0);
  const close = () =>
    Promise.all(fleets.map((fleet) => new Promise((resolve) => (fleet.once("exit", resolve), fleet.send("close")))));
  return { all, cpu, close };
}

async function measureScale(registry: Registry, hubPid: number) {
  const perDevice = 50;
  const key = (i: number) => Buffer.alloc(32, i % 251).toString("base64");
  const ids = Array.from({ length: MODULES }, (_, i) => ({
    deviceId: `scale-${Math.floor(i / perDevice)}`,
    moduleId: `m${i % perDevice}`,
    i,
  }));

  const createStarted = performance.now();
  const devices = [...new Set(ids.map((id) => id.deviceId))];
  await Promise.all(devices.map((deviceId) => registry.create({ deviceId })));
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        await registry.addModule({
          deviceId: id.deviceId,
          moduleId: id.moduleId,
          authentication: { symmetricKey: { primaryKey: key(id.i), secondaryKey: key(id.i + 1) } },
        } as never);
      }
    }),
  );
  const createSeconds = (performance.now() - createStarted) / 1000;

  // The clients run in two processes (test/bench/fleet.ts): one thread could not do 1,000 TLS handshakes as fast as the hub.
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const members: FleetMember[] = ids.map(({ deviceId, moduleId, i }) => ({
    clientId: `${deviceId}/${moduleId}`,
    password: createSasToken(`localhost/devices/${deviceId}/modules/${moduleId}`, key(i), expiry),
  }));
  const shares = [members.filter((_, i) => i % 2 === 0), members.filter((_, i) => i % 2 === 1)];

  // Baseline: the same number of bare TLS handshakes with the hub, no MQTT. What connecting costs beyond this is ours.
  const bareFleets = startFleets(2);
  await sleep(500); // let them load
  const tlsStarted = performance.now();
  const hubCpuBeforeTls = cpuMs(hubPid);
  await bareFleets.all("connected", shares, true);
  const tlsOnlyAllMs = performance.now() - tlsStarted;
  const hubTlsCpuMs = cpuMs(hubPid) - hubCpuBeforeTls;
  await bareFleets.close();
  await sleep(300);

  const fleets = startFleets(2);
  await sleep(500);
  const clientsCpuBefore = fleets.cpu();
  const hubCpuBefore = cpuMs(hubPid);
  const connectStarted = performance.now();
  await fleets.all("connected", shares);
  const connectAllMs = performance.now() - connectStarted;
  const hubConnectCpuMs = cpuMs(hubPid) - hubCpuBefore;
  const clientsConnectCpuMs = fleets.cpu() - clientsCpuBefore;
  const everyonePatched = fleets.all("patched");

  const patchStarted = performance.now();
  const patchQueue = [...ids];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let id = patchQueue.shift(); id; id = patchQueue.shift()) {
        await registry.updateModuleTwin(
          id.deviceId,
          id.moduleId,
          { properties: { desired: { telemetryInterval: 122 } } },
          "*",
        );
      }
    }),
  );
  await everyonePatched;
  const patchAllMs = performance.now() - patchStarted;
  const hubPeakRssMb = peakRssMb(hubPid);
  await fleets.close();
  return {
    modules: MODULES,
    createPerSec: round(MODULES / createSeconds, 0),
    connectAllMs: round(connectAllMs, 0),
    tlsOnlyAllMs: round(tlsOnlyAllMs, 0),
    hubTlsOnlyCpuMs: round(hubTlsCpuMs, 0),
    hubConnectCpuMs: round(hubConnectCpuMs, 0),
    clientsConnectCpuMs: round(clientsConnectCpuMs, 0),
    patchAllMs: round(patchAllMs, 0),
    hubPeakRssMb,
    client: "mqtt-packet over node:tls, one TLS connection per module, in 2 processes",
  };
}

// ---------------------------------------------------------------- main

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
  const hub = await startHubProcess(hubDir);
  try {
    const registry = Registry.fromConnectionString(hub.connectionString);
    await registry.create({ deviceId: "bench" });
    for (const moduleId of ["mqtt", "ws"]) await registry.addModule({ deviceId: "bench", moduleId });
    const moduleString = async (moduleId: string) =>
      `HostName=localhost;DeviceId=bench;ModuleId=${moduleId};SharedAccessKey=${(await registry.getModule("bench", moduleId)).responseBody.authentication!.symmetricKey!.primaryKey}`;

    log(
      `Machine: ${os.cpus().length} x ${os.cpus()[0].model}, ${round(os.totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`,
    );
    const wanted = (part: string) => !flags.only || flags.only === part;
    const results: Record<string, unknown> = {};

    if (wanted("latency")) {
      log(
        `1. Desired-patch latency, ${PATCHES} patches one after another (Registry.updateModuleTwin -> 'properties.desired')`,
      );
      const mqttLatency = await patchLatency(registry, await moduleString("mqtt"), Mqtt, "bench", "mqtt");
      log(
        `   Mqtt     p50 ${mqttLatency.p50} ms   p90 ${mqttLatency.p90} ms   p99 ${mqttLatency.p99} ms   max ${mqttLatency.max} ms`,
      );
      const wsLatency = await patchLatency(registry, await moduleString("ws"), MqttWs, "bench", "ws");
      log(
        `   MqttWs   p50 ${wsLatency.p50} ms   p90 ${wsLatency.p90} ms   p99 ${wsLatency.p99} ms   max ${wsLatency.max} ms`,
      );
      results.patchLatencyMs = { mqtt: mqttLatency, mqttWs: wsLatency };
    }

    if (wanted("startup")) {
      log(`2. Script start-up: CreateModule.ts, second run (identities exist), median of ${RUNS}`);
      const startup = measureStartup(hub.connectionString, caPath);
      log(`   npx tsx CreateModule.ts           ${startup.npxTsxMs} ms`);
      log(`   tsx CreateModule.ts (no npx)      ${startup.tsxMs} ms`);
      log(`   node --import tsx CreateModule.ts ${startup.nodeImportTsxMs} ms`);
      log(`   node CreateModule.js (compiled)   ${startup.nodeMs} ms`);
      const s = startup.split;
      log(
        `   where it goes: npx resolution ${s.npxResolutionMs} ms, tsx's extra process ${s.tsxExtraProcessMs} ms, tsx loader and transform ${s.tsxLoaderAndTransformMs} ms;`,
      );
      log(
        `   inside node: boot ${s.nodeBootMs} ms, loading the SDK ${s.sdkLoadMs} ms, our own code ${startup.ownCodeMs} ms, the four REST calls ${s.networkMs} ms`,
      );
      results.startup = startup;
    }

    if (wanted("scale")) {
      log(`3. Hub scale: ${MODULES} modules`);
      const scale = await measureScale(registry, hub.child.pid!);
      log(
        `   created ${scale.createPerSec} identities/s; all connected in ${scale.connectAllMs} ms; all patched in ${scale.patchAllMs} ms`,
      );
      log(
        `   CPU used while connecting: hub ${scale.hubConnectCpuMs} ms, the ${MODULES} clients ${scale.clientsConnectCpuMs} ms (2 cores shared)`,
      );
      log(
        `   baseline, the same number of bare TLS handshakes: ${scale.tlsOnlyAllMs} ms, hub CPU ${scale.hubTlsOnlyCpuMs} ms`,
      );
      log(`   hub peak RSS ${scale.hubPeakRssMb} MB; clients: ${scale.client}`);
      results.scale = scale;
    }

    if (flags.json)
      console.log(JSON.stringify({ ...results, machine: { cpus: os.cpus().length, node: process.version } }));
  } finally {
    const exited = new Promise((resolve) => hub.child.once("exit", resolve));
    hub.child.kill("SIGTERM");
    await exited;
  }
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
