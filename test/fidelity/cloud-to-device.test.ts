/**
 * Cloud-to-device messages: sent with azure-iothub's Client over AMQP, received by azure-iot-device over MQTT and
 * MQTT over WebSockets, feedback read back with getFeedbackReceiver().
 */
import { AmqpWs, Registry, Client as ServiceClient } from "azure-iothub";
import { Mqtt, MqttWs } from "azure-iot-device-mqtt";
import * as tls from "node:tls";
import * as mqttPacket from "mqtt-packet";
import { createSasToken, MAX_MESSAGES_PER_DEVICE } from "../localhub";
import { eventually, moduleConnectionString } from "../helpers/hub";
import { completingDevice, message } from "../helpers/messages";
import { MessagingHub, startMessagingHub } from "./messaging-hub";

let running: MessagingHub;
let hubLog: string[] = [];
let service: ServiceClient;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  hubLog = [];
  running = await startMessagingHub(undefined, { log: (line) => hubLog.push(line) });
  service = ServiceClient.fromConnectionString(running.hub.connectionString);
  closers.push(() => service.close());
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  await running.stop();
});

async function newDevice(deviceId: string): Promise<string> {
  await running.hub.core.identities.putDevice(deviceId, { deviceId }, undefined);
  return moduleConnectionString(running.hub, deviceId);
}

/** A device client collecting what it receives (it completes each message, as a device app does). */
async function openDevice(connectionString: string, transport: unknown = Mqtt) {
  const { client, received } = completingDevice(connectionString, transport);
  closers.push(() => client.close());
  await client.open();
  return { client, received };
}

/** Feedback records as the service SDK hands them over, collected from the first getFeedbackReceiver() call. */
async function collectFeedback(): Promise<any[]> {
  const receiver: any = (await service.getFeedbackReceiver()).result;
  const records: any[] = [];
  receiver.on("message", (batch: any) => {
    expect(batch.contentType).toBe("application/vnd.microsoft.iothub.feedback.json");
    records.push(...JSON.parse(batch.data.toString()));
    receiver.complete(batch, () => {});
  });
  return records;
}

describe.each([
  ["MQTT", Mqtt],
  ["MQTT over WebSockets", MqttWs],
])("cloud-to-device over %s", (_name, transport) => {
  it("delivers the message to on('message') with its id, correlation id, content type and properties", async () => {
    const { received } = await openDevice(await newDevice("c2d-dev"), transport);
    await service.send(
      "c2d-dev",
      message(
        '{"cmd":"reboot"}',
        { messageId: "m1", correlationId: "c1", contentType: "application/json", ack: "full" },
        { "my key": "a&b/c" },
      ),
    );
    await eventually(() => received.length === 1, "the message");
    const [got] = received;
    expect(got.data.toString()).toBe('{"cmd":"reboot"}');
    expect([got.messageId, got.correlationId, got.contentType, got.to]).toEqual([
      "m1",
      "c1",
      "application/json",
      "/devices/c2d-dev/messages/deviceBound",
    ]);
    expect(got.properties.getValue("my key")).toBe("a&b/c");
    expect(got.properties.getValue("iothub-ack")).toBe("full");
  });

  // Azure writes `iothub-ack` into the topic only when the sender asked for feedback (issue 17, point 4; Microsoft's
  // C2D e2e tests find their own property by a substring of its name and trip on an `iothub-ack=none`).
  it("carries no iothub-ack property when the sender asked for no acknowledgement", async () => {
    const { received } = await openDevice(await newDevice("c2d-noack"), transport);
    await service.send("c2d-noack", message("plain", { messageId: "no-ack" }, { mine: "1" }));
    await service.send("c2d-noack", message("none", { messageId: "ack-none", ack: "none" }));
    await eventually(() => received.length === 2, "both messages");
    for (const got of received) {
      const names = Array.from({ length: got.properties.count() }, (_, i) => got.properties.getItem(i).key);
      expect(names).not.toContain("iothub-ack");
    }
    expect(received[0].properties.getValue("mine")).toBe("1");
  });
});

describe("cloud-to-device", () => {
  it("reports Success through the feedback receiver once the device took a message sent with ack full", async () => {
    const feedback = await collectFeedback();
    const { received } = await openDevice(await newDevice("fb-dev"));
    await service.send("fb-dev", message("x", { messageId: "want-feedback", ack: "full" }));
    await service.send("fb-dev", message("y", { messageId: "no-feedback", ack: "none" }));
    await eventually(() => received.length === 2 && feedback.length === 1, "delivery and feedback");
    expect(feedback[0]).toMatchObject({
      originalMessageId: "want-feedback",
      statusCode: "Success",
      description: "Success",
      deviceId: "fb-dev",
      deviceGenerationId: running.hub.core.identities.find("fb-dev")!.generationId,
    });
    expect(Date.parse(feedback[0].enqueuedTimeUtc)).not.toBeNaN();
  });

  it("keeps a message for a device that is offline, across a hub restart, and delivers it when it connects", async () => {
    const connectionString = await newDevice("late-dev");
    await service.send("late-dev", message("waiting", { messageId: "m-late" }));
    await service.close();
    const dataDir = running.dataDir;
    await running.stop();
    running = await startMessagingHub(dataDir);
    const { received } = await openDevice(connectionString);
    await eventually(() => received.length === 1, "the queued message");
    expect(received[0].messageId).toBe("m-late");
  });

  it("sends a message again after a reconnect when the device did not acknowledge it", async () => {
    const connectionString = await newDevice("slow-dev");
    // A bare MQTT client that receives and never sends PUBACK (the SDK always acknowledges).
    const key = running.hub.core.identities.find("slow-dev")!.authentication.symmetricKey.primaryKey!;
    const socket = tls.connect({ host: "localhost", port: running.hub.ports.mqtt, servername: "localhost" });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const seen: mqttPacket.Packet[] = [];
    parser.on("packet", (packet) => seen.push(packet));
    socket.on("data", (chunk) => parser.parse(chunk));
    const write = (packet: mqttPacket.Packet) => socket.write(mqttPacket.generate(packet));
    write({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: false,
      keepalive: 60,
      clientId: "slow-dev",
      username: "localhost/slow-dev/?api-version=2021-04-12",
      password: Buffer.from(createSasToken("localhost/devices/slow-dev", key, Math.floor(Date.now() / 1000) + 600)),
    });
    write({
      cmd: "subscribe",
      messageId: 1,
      subscriptions: [{ topic: "devices/slow-dev/messages/devicebound/#", qos: 1 }],
    });
    await eventually(() => seen.some((p) => p.cmd === "suback"), "the SUBACK");
    await service.send("slow-dev", message("again", { messageId: "m-again" }));
    await eventually(() => seen.some((p) => p.cmd === "publish"), "the first delivery");
    socket.destroy();
    const { received } = await openDevice(connectionString);
    await eventually(() => received.length === 1, "the second delivery");
    expect(received[0].messageId).toBe("m-again");
  });

  it("drops a message nobody took before it expired, and reports Expired to a sender that asked", async () => {
    const feedback = await collectFeedback();
    await newDevice("away-dev");
    const expiry = Date.now() + 1000;
    await service.send("away-dev", message("too late", { messageId: "m-exp", ack: "negative", expiryTimeUtc: expiry }));
    await eventually(() => feedback.length === 1, "the Expired feedback", 10_000);
    expect(feedback[0]).toMatchObject({ originalMessageId: "m-exp", statusCode: "Expired", deviceId: "away-dev" });
    expect(running.hub.core.cloudToDevice.pendingFor("away-dev")).toEqual([]);
  });

  it("purges a deleted device's queue and reports Purged to a sender that asked", async () => {
    const feedback = await collectFeedback();
    await newDevice("gone-dev");
    await service.send("gone-dev", message("never read", { messageId: "m-purged", ack: "full" }));
    await Registry.fromConnectionString(running.hub.connectionString).delete("gone-dev");
    await eventually(() => feedback.length === 1, "the Purged feedback");
    expect(feedback[0]).toMatchObject({ originalMessageId: "m-purged", statusCode: "Purged", deviceId: "gone-dev" });
    await newDevice("gone-dev");
    expect(running.hub.core.cloudToDevice.pendingFor("gone-dev")).toEqual([]);
  });

  it("counts the messages waiting for a device in its identity and its twin until the device takes them", async () => {
    const registry = Registry.fromConnectionString(running.hub.connectionString);
    const waiting = async () => {
      const device = (await registry.get("count-dev")).responseBody;
      const twin = (await registry.getTwin("count-dev")).responseBody as unknown as {
        cloudToDeviceMessageCount: number;
      };
      expect(twin.cloudToDeviceMessageCount).toBe(device.cloudToDeviceMessageCount);
      return device.cloudToDeviceMessageCount;
    };
    const connectionString = await newDevice("count-dev");
    expect(await waiting()).toBe(0);
    await service.send("count-dev", message("first"));
    await service.send("count-dev", message("second"));
    expect(await waiting()).toBe(2);
    const { received } = await openDevice(connectionString);
    await eventually(() => received.length === 2, "both messages");
    // The device completes each one (PUBACK), and the hub takes it out of the queue then.
    await eventually(() => running.hub.core.cloudToDevice.pendingFor("count-dev").length === 0, "the completions");
    expect(await waiting()).toBe(0);
  });

  it(`refuses the message after ${MAX_MESSAGES_PER_DEVICE} queued for one device`, async () => {
    await newDevice("full-dev");
    for (let i = 0; i < MAX_MESSAGES_PER_DEVICE; i++) await service.send("full-dev", message(String(i)));
    await expect(service.send("full-dev", message("one too many"))).rejects.toMatchObject({
      name: "DeviceMaximumQueueDepthExceededError",
    });
  });

  it("takes a message from a service client on AMQP over WebSockets (443, subprotocol AMQPWSB10)", async () => {
    const { received } = await openDevice(await newDevice("ws-dev"));
    const overWebSockets = ServiceClient.fromConnectionString(running.hub.connectionString, AmqpWs);
    closers.push(() => overWebSockets.close());
    await overWebSockets.send("ws-dev", message("via websocket", { messageId: "m-ws" }));
    await eventually(() => received.length === 1, "the message");
    expect(received[0].data.toString()).toBe("via websocket");
    expect(hubLog.some((line) => line.startsWith("AMQP OPEN amqpws"))).toBe(true);
  });

  it("refuses a message for a device that does not exist", async () => {
    await expect(service.send("nobody", message("x"))).rejects.toMatchObject({ name: "DeviceNotFoundError" });
  });

  it("carries an empty message and one of the 64 KB maximum, and refuses a larger one", async () => {
    const { received } = await openDevice(await newDevice("size-dev"));
    await service.send("size-dev", message(Buffer.alloc(0), { messageId: "empty" }));
    // IoT Hub counts the body and the properties' values: "max" takes 3 of the 64 KB.
    await service.send("size-dev", message(Buffer.alloc(64 * 1024 - 3, 1), { messageId: "max" }));
    await eventually(() => received.length === 2, "both messages");
    expect(received.map((m) => [m.messageId, m.data.length])).toEqual([
      ["empty", 0],
      ["max", 64 * 1024 - 3],
    ]);
    await expect(service.send("size-dev", message(Buffer.alloc(64 * 1024 + 1)))).rejects.toMatchObject({
      name: "MessageTooLargeError",
    });
  });
});
