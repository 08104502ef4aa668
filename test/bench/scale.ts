/**
 * @summary How far the hub scales: `--modules N` module identities created over REST, all connected at once over MQTT
 * (the lightweight clients of fleet.ts), each sent a desired patch; the hub's CPU and peak memory meanwhile.
 */
import * as path from "node:path";
import { fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { Registry } from "azure-iothub";
import { createSasToken } from "../localhub";
import type { FleetMember } from "./fleet";
import { TSX_LOADER } from "./hub-process";
import { cpuMs, inParallel, peakRssMb, round, sleep } from "./measure";

const FLEETS = 2;
const MODULES_PER_DEVICE = 50;

/** Starts `FLEETS` fleet processes (fleet.ts) and returns a way to talk to all of them at once. */
function startFleets(clientEnv: NodeJS.ProcessEnv) {
  const fleets = Array.from({ length: FLEETS }, () =>
    fork(path.join(__dirname, "fleet.ts"), [], {
      execArgv: ["--import", TSX_LOADER],
      env: { ...process.env, ...clientEnv },
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

export async function measureScale(registry: Registry, hubPid: number, modules: number, clientEnv: NodeJS.ProcessEnv) {
  const key = (i: number) => Buffer.alloc(32, i % 251).toString("base64");
  const ids = Array.from({ length: modules }, (_, i) => ({
    deviceId: `scale-${Math.floor(i / MODULES_PER_DEVICE)}`,
    moduleId: `m${i % MODULES_PER_DEVICE}`,
    i,
  }));

  const createStarted = performance.now();
  const devices = [...new Set(ids.map((id) => id.deviceId))];
  await inParallel(devices, 16, (deviceId) => registry.create({ deviceId }));
  await inParallel(ids, 16, (id) =>
    registry.addModule({
      deviceId: id.deviceId,
      moduleId: id.moduleId,
      authentication: { symmetricKey: { primaryKey: key(id.i), secondaryKey: key(id.i + 1) } },
    }),
  );
  const createSeconds = (performance.now() - createStarted) / 1000;

  // The clients run in two processes (fleet.ts): one thread could not do 1,000 TLS handshakes as fast as the hub.
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const members: FleetMember[] = ids.map(({ deviceId, moduleId, i }) => ({
    clientId: `${deviceId}/${moduleId}`,
    password: createSasToken(`localhost/devices/${deviceId}/modules/${moduleId}`, key(i), expiry),
  }));
  const shares = Array.from({ length: FLEETS }, (_, f) => members.filter((_, i) => i % FLEETS === f));

  // Baseline: the same number of bare TLS handshakes with the hub, no MQTT. What connecting costs beyond this is ours.
  const bareFleets = startFleets(clientEnv);
  await sleep(500); // let them load
  const tlsStarted = performance.now();
  const hubCpuBeforeTls = cpuMs(hubPid);
  await bareFleets.all("connected", shares, true);
  const tlsOnlyAllMs = performance.now() - tlsStarted;
  const hubTlsCpuMs = cpuMs(hubPid) - hubCpuBeforeTls;
  await bareFleets.close();
  await sleep(300);

  const fleets = startFleets(clientEnv);
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
  await inParallel(ids, 16, (id) =>
    registry.updateModuleTwin(id.deviceId, id.moduleId, { properties: { desired: { telemetryInterval: 122 } } }, "*"),
  );
  await everyonePatched;
  const patchAllMs = performance.now() - patchStarted;
  const hubPeakRssMb = peakRssMb(hubPid);
  await fleets.close();
  return {
    modules,
    createPerSec: round(modules / createSeconds, 0),
    connectAllMs: round(connectAllMs, 0),
    tlsOnlyAllMs: round(tlsOnlyAllMs, 0),
    hubTlsOnlyCpuMs: round(hubTlsCpuMs, 0),
    hubConnectCpuMs: round(hubConnectCpuMs, 0),
    clientsConnectCpuMs: round(clientsConnectCpuMs, 0),
    patchAllMs: round(patchAllMs, 0),
    hubPeakRssMb,
    client: `mqtt-packet over node:tls, one TLS connection per module, in ${FLEETS} processes`,
  };
}
