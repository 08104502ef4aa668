/**
 * @summary The brokers the hub is measured against, each as its own process on a free loopback port with the bench's
 * certificates: aedes (npm, aedes-broker.ts) and, when its binary is on the PATH, mosquitto.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { TSX_LOADER } from "./hub-process";
import { sleep } from "./measure";
import { READER_WINDOW } from "./peer-reader";

export interface PeerBroker {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Kills a process group and waits for its leader to exit. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // gone already
  }
  await exited;
}

function aedesVersion(): string {
  const manifest = path.join(path.dirname(require.resolve("aedes")), "package.json");
  return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { version: string }).version;
}

export async function startAedes(certDir: string): Promise<PeerBroker> {
  const child = spawn(process.execPath, ["--import", TSX_LOADER, path.join(__dirname, "aedes-broker.ts"), certDir], {
    detached: true,
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const line = output.split("\n").find((l) => l.startsWith("{"));
        if (line && output.includes("\n")) resolve((JSON.parse(line) as { port: number }).port);
      });
      child.once("exit", (code) => reject(new Error(`aedes exited with code ${code}: ${output}`)));
    });
    return { name: `aedes ${aedesVersion()}`, port, pid: child.pid!, stop: () => stopGroup(child) };
  } catch (err) {
    await stopGroup(child);
    throw err;
  }
}

/** `mosquitto 2.0.11` when the binary is on the PATH, else undefined. */
export function mosquittoVersion(): string | undefined {
  const result = spawnSync("mosquitto", ["-h"], { encoding: "utf8" });
  if (result.error) return undefined;
  return /mosquitto version (\S+)/.exec(result.stdout + result.stderr)?.[1] ?? "unknown version";
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/**
 * mosquitto with TLS, persistence on (its default: saved on shutdown and every 30 min, no fsync per message), no cap
 * on its queue for the subscriber (the default 1,000 would drop messages) and as many in flight to it as the hub's
 * readers grant credit (READER_WINDOW).
 */
export async function startMosquitto(certDir: string, workDir: string): Promise<PeerBroker> {
  const version = mosquittoVersion();
  if (!version) throw new Error("mosquitto is not installed");
  fs.mkdirSync(workDir, { recursive: true });
  const port = await freePort();
  const config = path.join(workDir, "mosquitto.conf");
  fs.writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      `certfile ${path.join(certDir, "server.pem")}`,
      `keyfile ${path.join(certDir, "server-key.pem")}`,
      "allow_anonymous true",
      "persistence true",
      `persistence_location ${workDir}/`,
      "max_queued_messages 0",
      `max_inflight_messages ${READER_WINDOW}`,
      `user ${os.userInfo().username}`,
      // Its log goes to a pipe, shown only if it fails to start: killed clients make it log every dropped TLS socket.
      "log_dest stderr",
      "log_type error",
      "",
    ].join("\n"),
  );
  const child = spawn("mosquitto", ["-c", config], { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let errors = "";
  child.stderr.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-2000)));
  try {
    for (let tries = 0; !(await acceptsConnections(port)); tries++) {
      if (child.exitCode !== null || tries > 100) throw new Error(`mosquitto did not start: ${errors.trim()}`);
      await sleep(50);
    }
    return { name: `mosquitto ${version}`, port, pid: child.pid!, stop: () => stopGroup(child) };
  } catch (err) {
    await stopGroup(child);
    throw err;
  }
}
