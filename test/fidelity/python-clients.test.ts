/**
 * Azure's Python AMQP clients against the hub, unmodified: uamqp (the C2D of azure-iot-hub for Python and the Azure
 * CLI's monitor-events) logs in through CBS, sends a cloud-to-device message and reads a partition; azure-eventhub
 * 5.11+, whose AMQP is pyamqp, reads the telemetry. Debian ships them (python3-uamqp, python3-azure); .ci/run installs both when missing.
 * Each test says in one line why it is skipped where its client is not installed.
 */
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import * as path from "node:path";
import { Client as DeviceClient, Message } from "azure-iot-device";
import { eventually, moduleConnectionString, policyToken } from "../helpers/hub";
import { completingDevice } from "../helpers/messages";
import { runProcess } from "../helpers/processes";
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

/** Runs a Python script to its end, in a process group of its own that is stopped whatever happens. */
function runPython(script: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return runProcess(PYTHON, [path.join(SCRIPTS, script), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: process.env.PYTHONPATH, ...env },
    label: script,
    timeoutMs: 25_000,
  });
}

/** An Event Hubs SAS token: Event Hubs clients sign with the key's text, where IoT Hub's decode it from base64. */
function eventHubToken(resource: string, policyName: string): string {
  const key = running.hub.core.policies.find(policyName)!.primaryKey;
  const sr = encodeURIComponent(resource);
  const se = Math.floor(Date.now() / 1000) + 3600;
  const sig = createHmac("sha256", Buffer.from(key, "utf8")).update(`${sr}\n${se}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${policyName}`;
}

/** Every event the hub keeps now, over all partitions (the tests of this file share one hub). */
function eventsInHub(): number {
  const { telemetry } = running.hub.core;
  return Array.from({ length: telemetry.partitionCount }, (_, id) => telemetry.partitionInfo(id)!).reduce(
    (sum, info) => sum + (info.isEmpty ? 0 : info.lastSequenceNumber - info.beginSequenceNumber + 1),
    0,
  );
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
  const { client, received } = completingDevice(moduleConnectionString(running.hub, deviceId));
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
        String(running.hub.amqp.port),
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

  (uamqpMissing ? it.skip : it)(
    "uamqp reads a device's telemetry from its partition, as az iot hub monitor-events does",
    async () => {
      const { client } = await openDevice("py-monitor");
      await client.sendEvent(new Message("monitored 1"));
      await client.sendEvent(new Message("monitored 2"));
      // One device's events go to one partition: the one that has events now.
      const { telemetry } = running.hub.core;
      const partition = Array.from({ length: telemetry.partitionCount }, (_, id) => id).find(
        (id) => !telemetry.partitionInfo(id)!.isEmpty,
      )!;
      const { entityName } = running.hub.amqp;
      const { code, stdout, stderr } = await runPython("uamqp_read_events.py", [
        running.hub.hostName,
        String(running.hub.amqp.port),
        entityName,
        eventHubToken(`sb://${running.hub.hostName}/${entityName}`, "service"),
        running.hub.caPath,
        String(partition),
        "2",
      ]);
      expect({ code, stderr: stderr.slice(0, 2000) }).toMatchObject({ code: 0 });
      const events = stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(events).toEqual([
        { body: "monitored 1", device: "py-monitor", sequence_number: 0 },
        { body: "monitored 2", device: "py-monitor", sequence_number: 1 },
      ]);
    },
  );

  if (pyamqpMissing) console.log(`SKIPPED pyamqp test: ${pyamqpMissing} (apt-get install python3-azure)`);
  (pyamqpMissing ? it.skip : it)(
    "azure-eventhub on pyamqp reads the hub's properties and a device's telemetry",
    async () => {
      const { client } = await openDevice("py-telemetry");
      await client.sendEvent(new Message("reading 1"));
      await client.sendEvent(new Message("reading 2"));
      const amqpPort = running.hub.amqp.port;
      const { code, stdout, stderr } = await runPython(
        "pyamqp_read_events.py",
        [running.hub.eventHubConnectionString("service"), running.hub.caPath, String(eventsInHub())],
        { LOCALHUB_PORT_MAP: `5671=${amqpPort}` },
      );
      expect({ code, stderr: stderr.slice(0, 2000) }).toMatchObject({ code: 0 });
      const lines = stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines[0]).toEqual({
        partition_ids: Array.from({ length: running.hub.core.telemetry.partitionCount }, (_, id) => String(id)),
      });
      const events = lines.slice(1).filter((event) => event.device === "py-telemetry");
      expect(events.map((event) => event.body).sort()).toEqual(["reading 1", "reading 2"]);
    },
  );
});
