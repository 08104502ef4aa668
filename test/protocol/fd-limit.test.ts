/**
 * Under `ulimit -n 1024`, 1,100 idle TCP connections to the MQTT port do not shut out a valid client: when file
 * descriptors run short the hub closes the connections that sent nothing, oldest first, and serves the SDK's device
 * at once, not after the idle ones time out.
 */
import { execFileSync } from "node:child_process";
import * as net from "node:net";
import { Registry } from "azure-iothub";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { tempDir } from "../helpers/hub";
import { spawnHubCli } from "../helpers/hub-process";

const IDLE_CONNECTIONS = 1_100;

const EPHEMERAL_IN_MEMORY = ["--https-port", "0", "--mqtt-port", "0", "--amqp-port", "0", "--in-memory"];
const sockets: net.Socket[] = [];

function openIdle(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => resolve());
    socket.on("error", () => resolve()); // refused or reset: the hub's choice, not the test's
    sockets.push(socket);
  });
}

it("serves a valid MQTT client at once while 1,100 idle connections try to hold every descriptor", async () => {
  const hub = spawnHubCli(tempDir("fd-limit-"), EPHEMERAL_IN_MEMORY);
  try {
    // `ulimit -n 1024` for the hub alone (soft and hard, so node cannot raise it), set before it opens its ports.
    execFileSync("prlimit", [`--pid=${hub.child.pid}`, "--nofile=1024:1024"]);
    await hub.ready();
    const connectionString = hub.connect();
    const registry = Registry.fromConnectionString(connectionString);
    const { responseBody: device } = await registry.create({ deviceId: "valid" });
    const mqttPort = Number(/mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(hub.output)![1]);

    for (let i = 0; i < IDLE_CONNECTIONS; i += 100) {
      await Promise.all(Array.from({ length: 100 }, () => openIdle(mqttPort)));
    }
    const before = hub.output.length;
    const client = DeviceClient.fromConnectionString(
      `HostName=localhost;DeviceId=valid;SharedAccessKey=${device.authentication!.symmetricKey!.primaryKey}`,
      Mqtt,
    );
    try {
      await client.open();
      const twin = await client.getTwin();
      expect(typeof twin.properties.desired.$version).toBe("number");
    } finally {
      await client.close().catch(() => {});
    }
    const during = hub.output.slice(before);
    // Served before any idle connection timed out: the hub made room instead of waiting for its timeouts to.
    const accepted = during.indexOf("MQTT CONNECT valid 0 accepted");
    expect(accepted).toBeGreaterThanOrEqual(0);
    expect(during.slice(0, accepted)).not.toMatch(/not finished in time|no CONNECT in time/);
    expect(hub.output).toMatch(/file descriptors short .*closed \d+ connections that had sent no CONNECT or request/);
    expect((await registry.get("valid")).responseBody.deviceId).toBe("valid");
  } finally {
    for (const socket of sockets) socket.destroy();
    await hub.stop(); // the hub's whole process group
  }
}, 60_000);
