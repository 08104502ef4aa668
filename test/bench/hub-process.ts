/**
 * @summary The bench's hub: `npm run hub` as its own process (so that its memory and CPU are its own) on ephemeral
 * ports, with this process and the bench's child processes sent to it as if it served localhost:443 and :8883.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { redirectEnv, setPortMap } from "../localhub";

const ROOT = path.resolve(__dirname, "../..");
export const TSX_LOADER = require.resolve("tsx");

export interface BenchHub {
  child: ChildProcess;
  connectionString: string;
  /** Standard port -> the port the hub bound, e.g. { 443: 40123, 8883: 40124 }. */
  portMap: Record<number, number>;
  /** What a child process of the bench (fleet, scripts) needs in its environment to reach the hub. */
  clientEnv: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** BENCH_HUB_CPU_PROF=DIR: every bench hub writes a V8 CPU profile into DIR when it stops (node --cpu-prof). */
function cpuProfileArgs(): string[] {
  const dir = process.env.BENCH_HUB_CPU_PROF;
  return dir ? ["--cpu-prof", "--cpu-prof-dir", dir] : [];
}

/** LOCALHUB_PORT_MAP's value (`443=40123,8883=40124`) as a map. */
function parsePortMap(value: string): Record<number, number> {
  const map: Record<number, number> = {};
  for (const pair of value.split(",").filter(Boolean)) {
    const [from, to] = pair.split("=").map(Number);
    map[from] = to;
  }
  return map;
}

/**
 * Starts the CLI on a fresh `dataDir`, with the certificates of `certDir` (those this process trusts), and
 * `--https-port 0 --mqtt-port 0`: the bench needs no privileges and no free port 443, and may run next to other hubs.
 */
export async function startBenchHub(dataDir: string, certDir: string): Promise<BenchHub> {
  fs.mkdirSync(dataDir, { recursive: true });
  for (const file of fs.readdirSync(certDir).filter((name) => name.endsWith(".pem")))
    fs.copyFileSync(path.join(certDir, file), path.join(dataDir, file));
  const cli = path.join(ROOT, "test/localhub/cli.ts");
  const args = [...cpuProfileArgs(), "--import", TSX_LOADER, cli, "--data", dataDir, "--quiet"];
  args.push("--https-port", "0", "--mqtt-port", "0");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (/ready/.test(output)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the hub exited with code ${code}: ${output}`)));
  });
  const env = fs.readFileSync(path.join(dataDir, "env"), "utf8");
  const connectionString = /IOTHUB_CONNECTION_STRING="([^"]+)"/.exec(env)?.[1];
  if (!connectionString) throw new Error(`no IOTHUB_CONNECTION_STRING in ${dataDir}/env`);
  const portMap = parsePortMap(/^LOCALHUB_PORT_MAP=(.*)$/m.exec(env)?.[1] ?? "");
  setPortMap(portMap);
  const clientEnv = { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, ...redirectEnv(portMap) };
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  return { child, connectionString, portMap, clientEnv, stop };
}

export interface BenchMessagingHub extends BenchHub {
  eventHubConnectionString: string;
}

/**
 * The hub with its AMQP edge (messaging-hub.ts) as its own process, on free ports that this process reaches as
 * localhost:443, 8883 and 5671.
 */
export async function startBenchMessagingHub(dataDir: string, certDir: string): Promise<BenchMessagingHub> {
  fs.mkdirSync(dataDir, { recursive: true });
  for (const file of fs.readdirSync(certDir).filter((name) => name.endsWith(".pem")))
    fs.copyFileSync(path.join(certDir, file), path.join(dataDir, file));
  const args = [...cpuProfileArgs(), "--import", TSX_LOADER, path.join(__dirname, "messaging-hub.ts"), dataDir];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const started = await new Promise<{
    ports: { https: number; mqtt: number; amqp: number };
    iotHub: string;
    eventHub: string;
  }>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split("\n").find((l) => l.startsWith("{"));
      if (line && output.includes("\n")) resolve(JSON.parse(line) as never);
    });
    child.once("exit", (code) => reject(new Error(`the messaging hub exited with code ${code}: ${output}`)));
  });
  const portMap = { 443: started.ports.https, 8883: started.ports.mqtt, 5671: started.ports.amqp };
  setPortMap(portMap);
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  return {
    child,
    connectionString: started.iotHub,
    eventHubConnectionString: started.eventHub,
    portMap,
    clientEnv: { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS, ...redirectEnv(portMap) },
    stop,
  };
}
