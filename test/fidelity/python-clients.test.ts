/**
 * Azure's Python AMQP clients against the hub, unmodified: uamqp (the C2D of azure-iot-hub for Python and the Azure
 * CLI's monitor-events) logs in through CBS and sends a cloud-to-device message; azure-eventhub 5.11+, whose AMQP is
 * pyamqp, reads the telemetry. Debian ships them (python3-uamqp, python3-azure); .ci/run installs both when missing.
 * Each test says in one line why it is skipped where its client is not installed.
 */
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";
import { Client as DeviceClient, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { eventually, moduleConnectionString, policyToken } from "../helpers/hub";
import { MessagingHub, startMessagingHub } from "./messaging-hub";

/** Debian's Python, where the python3-* packages install (a pyenv python on PATH does not see them). */
const PYTHON = "/usr/bin/python3";
const SCRIPTS = path.join(__dirname, "python");

/** Whether the system Python imports these modules; the reason it does not otherwise. */
function pythonHas(...modules: string[]): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", modules.map((m) => `import ${m}`).join("; ")], { encoding: "utf8" });
  if (probe.error) return `${PYTHON} is not installed`;
  return probe.status === 0 ? undefined : (probe.stderr.trim().split("\n").pop() ?? "import failed");
}

const uamqpMissing = pythonHas("uamqp");
const pyamqpMissing = pythonHas("azure.eventhub._pyamqp");

/** Runs a Python script to its end in its own process group, which is killed whatever happens. */
async function runPython(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 40_000) {
  const child = spawn(PYTHON, [path.join(SCRIPTS, script), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: process.env.PYTHONPATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${script} ran over ${timeoutMs} ms: ${stdout}${stderr}`)),
        timeoutMs,
      );
      child.on("exit", (exitCode) => (clearTimeout(timer), resolve(exitCode)));
    });
    return { code, stdout, stderr };
  } finally {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // The group is gone already.
    }
  }
}

let running: MessagingHub;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  running = await startMessagingHub();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(() => running.stop());

async function openDevice(deviceId: string): Promise<{ client: DeviceClient; received: Message[] }> {
  await running.hub.core.identities.putDevice(deviceId, { deviceId }, undefined);
  const client = DeviceClient.fromConnectionString(moduleConnectionString(running.hub, deviceId), Mqtt);
  const received: Message[] = [];
  client.on("message", (message: Message) => {
    received.push(message);
    void client.complete(message);
  });
  closers.push(() => client.close());
  await client.open();
  return { client, received };
}

describe("Python clients", () => {
  if (uamqpMissing) console.log(`SKIPPED uamqp test: ${uamqpMissing} (apt-get install python3-uamqp)`);
  (uamqpMissing ? it.skip : it)(
    "uamqp logs in through CBS (SASL MSSBCBS) and sends a cloud-to-device message",
    async () => {
      const { received } = await openDevice("py-c2d");
      const { code, stdout, stderr } = await runPython("uamqp_send_c2d.py", [
        running.hub.hostName,
        String(running.messaging.amqp.port),
        policyToken(running.hub, "service"),
        running.hub.caPath,
        "py-c2d",
        "hello from uamqp",
      ]);
      expect({ code, stdout: stdout.trim() }).toEqual({ code: 0, stdout: "sent SendComplete" });
      expect(stderr).not.toMatch(/error/i);
      await eventually(() => received.length === 1, "the message at the device");
      expect(received[0].data.toString()).toBe("hello from uamqp");
      expect(received[0].properties.getValue("sent-by")).toBe("uamqp");
    },
  );

  if (pyamqpMissing) console.log(`SKIPPED pyamqp test: ${pyamqpMissing} (apt-get install python3-azure)`);
  (pyamqpMissing ? it.skip : it)(
    "azure-eventhub on pyamqp reads the hub's properties and a device's telemetry",
    async () => {
      const { client } = await openDevice("py-telemetry");
      await client.sendEvent(new Message("reading 1"));
      await client.sendEvent(new Message("reading 2"));
      const amqpPort = running.messaging.amqp.port;
      const { code, stdout, stderr } = await runPython(
        "pyamqp_read_events.py",
        [running.messaging.eventHubConnectionString("service"), running.hub.caPath, "2"],
        { LOCALHUB_PORT_MAP: `5671=${amqpPort}` },
      );
      expect({ code, stderr: stderr.slice(0, 2000) }).toMatchObject({ code: 0 });
      const lines = stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines[0]).toEqual({ partition_ids: running.messaging.events.partitions.map((p) => String(p.id)) });
      const events = lines.slice(1);
      expect(events.map((event) => event.body).sort()).toEqual(["reading 1", "reading 2"]);
      expect(events.every((event) => event.device === "py-telemetry")).toBe(true);
    },
  );
});
