/**
 * The device side of HTTPS, with the unmodified `azure-iot-device-http` transport (`Http`): telemetry and batches
 * read back by EventHubConsumerClient as MQTT telemetry is, cloud-to-device receive with complete, reject and
 * abandon (the SDK's `POST/GET/DELETE /devices/{id}/messages/...`, azure-iot-device-http http.js), the feedback the
 * service reads, the lock IoT Hub documents (MicrosoftDocs iot-hub-devguide-messages-c2d: one minute; 412002
 * DeviceMessageLockLost in troubleshoot-error-codes), SAS per request and X.509 by TLS client certificate on 443.
 */
import { EventHubConsumerClient, ReceivedEventData, earliestEventPosition } from "@azure/event-hubs";
import { Client as ServiceClient } from "azure-iothub";
import { Client as DeviceClient, Message, ModuleClient } from "azure-iot-device";
import { Http } from "azure-iot-device-http";
import { Mqtt } from "azure-iot-device-mqtt";
import * as fs from "node:fs";
import * as path from "node:path";
import { ClientCertificate, certificate } from "../helpers/client-certificates";
import { eventually, identityToken, moduleConnectionString, rawRequest, tempDir } from "../helpers/hub";
import { message } from "../helpers/messages";
import { MessagingHub, startMessagingHub } from "./messaging-hub";

const API = "?api-version=2021-04-12";
let running: MessagingHub;
let service: ServiceClient;
let consumer: EventHubConsumerClient;
const closers: (() => Promise<unknown>)[] = [];

let trustedCa: ClientCertificate;

beforeAll(async () => {
  // A CA for certificateAuthority devices, in DIR/client-cas before the hub starts (as the README says).
  const dataDir = tempDir();
  trustedCa = await certificate("https test CA");
  fs.mkdirSync(path.join(dataDir, "client-cas"));
  fs.writeFileSync(path.join(dataDir, "client-cas", "test-ca.pem"), trustedCa.cert);
  running = await startMessagingHub(dataDir);
  service = ServiceClient.fromConnectionString(running.hub.connectionString);
  consumer = new EventHubConsumerClient("$Default", running.hub.eventHubConnectionString());
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(async () => {
  await consumer.close();
  await service.close();
  await running.stop();
});

async function newDevice(deviceId: string, body: object = { deviceId }): Promise<string> {
  await running.hub.core.identities.putDevice(deviceId, body, undefined);
  return moduleConnectionString(running.hub, deviceId);
}

/** An Http device that polls for C2D messages every 100 ms (the SDK's receivePolicy; its default is 1 s). */
function httpDevice(connectionString: string): DeviceClient {
  const client = DeviceClient.fromConnectionString(connectionString, Http);
  void client.setOptions({ http: { receivePolicy: { interval: 0.1 } } });
  closers.push(() => client.close());
  return client;
}

/** Every event of `deviceId` in the log, once `count` have arrived. */
async function eventsOf(deviceId: string, count: number): Promise<ReceivedEventData[]> {
  const events: ReceivedEventData[] = [];
  const subscription = consumer.subscribe(
    {
      processEvents: (batch) => {
        events.push(...batch.filter((e) => e.systemProperties?.["iothub-connection-device-id"] === deviceId));
        return Promise.resolve();
      },
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
  );
  try {
    await eventually(() => events.length >= count, `${count} events of ${deviceId}`);
  } finally {
    await subscription.close();
  }
  return events;
}

/** What an event carries that a sender controls or IoT Hub stamps, without the log's own positions and times. */
function shapeOf(event: ReceivedEventData) {
  const { "iothub-enqueuedtime": _t, ...system } = event.systemProperties ?? {};
  for (const key of ["x-opt-sequence-number", "x-opt-offset", "x-opt-enqueued-time"]) delete system[key];
  return {
    // The consumer parses JSON bodies and hands others over as bytes.
    body: Buffer.isBuffer(event.body) ? event.body.toString() : JSON.stringify(event.body),
    properties: event.properties,
    messageId: event.messageId,
    correlationId: event.correlationId,
    contentType: event.contentType,
    system,
  };
}

/** Feedback records as the service SDK hands them over. */
async function collectFeedback(): Promise<any[]> {
  const receiver: any = (await service.getFeedbackReceiver()).result;
  const records: any[] = [];
  const onMessage = (batch: any) => {
    records.push(...JSON.parse(batch.data.toString()));
    receiver.complete(batch, () => {});
  };
  receiver.on("message", onMessage);
  closers.push(() => Promise.resolve(receiver.removeListener("message", onMessage)));
  return records;
}

/** A device app as Microsoft's samples write it: on('message') starts the SDK's polling (every second). */
function receiving(client: DeviceClient, settle: (m: Message) => Promise<unknown>): Message[] {
  const received: Message[] = [];
  client.on("message", (m: Message) => {
    received.push(m);
    void settle(m).catch(() => {});
  });
  return received;
}

describe("telemetry over HTTPS", () => {
  it("reaches the event log exactly as the same message sent over MQTT does: properties and system properties", async () => {
    const connectionString = await newDevice("https-tele");
    const fields: Partial<Message> = {
      messageId: "m1",
      correlationId: "c1",
      contentType: "application/json",
      contentEncoding: "utf-8",
    };
    const overMqtt = DeviceClient.fromConnectionString(connectionString, Mqtt);
    closers.push(() => overMqtt.close());
    await overMqtt.sendEvent(message('{"t":21}', fields, { alert: "hot", MixedCase: "kept" }));
    await httpDevice(connectionString).sendEvent(message('{"t":21}', fields, { alert: "hot", MixedCase: "kept" }));
    const [mqtt, https] = (await eventsOf("https-tele", 2)).map(shapeOf);
    expect(https).toEqual(mqtt);
    expect(https.properties).toEqual({ alert: "hot", MixedCase: "kept" });
    expect(https.system).toMatchObject({
      "iothub-connection-device-id": "https-tele",
      "iothub-message-source": "Telemetry",
    });
    expect([https.messageId, https.correlationId, https.contentType]).toEqual(["m1", "c1", "application/json"]);
    expect(JSON.parse(https.system["iothub-connection-auth-method"] as string)).toMatchObject({ type: "sas" });
  });

  it("stores each message of a sendEventBatch with its own properties, in order", async () => {
    const client = httpDevice(await newDevice("https-batch"));
    await client.sendEventBatch([message("one", {}, { n: "1" }), message("two"), message("three", {}, { n: "3" })]);
    const events = (await eventsOf("https-batch", 3)).map(shapeOf);
    expect(events.map((e) => [e.body, e.properties])).toEqual([
      ["one", { n: "1" }],
      ["two", undefined],
      ["three", { n: "3" }],
    ]);
  });

  it("refuses a message or a batch over 256 KB with the SDK's MessageTooLargeError, storing none of it", async () => {
    const client = httpDevice(await newDevice("https-large"));
    const big = "x".repeat(256 * 1024 + 1);
    expect((await client.sendEvent(message(big)).catch((e) => e)).name).toBe("MessageTooLargeError");
    const halves = [message("y".repeat(130 * 1024)), message("z".repeat(130 * 1024))];
    expect((await client.sendEventBatch(halves).catch((e) => e)).name).toBe("MessageTooLargeError");
    await client.sendEvent(message("small"));
    expect((await eventsOf("https-large", 1)).map((e) => shapeOf(e).body)).toEqual(["small"]);
  });

  it("takes a module's telemetry on /devices/{id}/modules/{mid}/messages/events with the module's token", async () => {
    await newDevice("https-mod");
    await running.hub.core.identities.putModule(
      "https-mod",
      "filter",
      { deviceId: "https-mod", moduleId: "filter" },
      undefined,
    );
    const answer = await rawRequest("POST", `/devices/https-mod/modules/filter/messages/events${API}`, {
      authorization: identityToken(running.hub, "https-mod", "filter"),
      body: "from the module",
      headers: { "iothub-app-k": "v" },
    });
    expect(answer.status).toBe(204);
    const [event] = await eventsOf("https-mod", 1);
    expect([shapeOf(event).body, event.properties, event.systemProperties?.["iothub-connection-module-id"]]).toEqual([
      "from the module",
      { k: "v" },
      "filter",
    ]);
    // The Node SDK's ModuleClient over Http posts to the device's path: the module's token does not reach it.
    const module = ModuleClient.fromConnectionString(moduleConnectionString(running.hub, "https-mod", "filter"), Http);
    closers.push(() => module.close());
    expect((await module.sendEvent(message("x")).catch((e) => e)).name).toBe("UnauthorizedError");
  });

  it("refuses a request signed with a key that is not the device's with UnauthorizedError", async () => {
    await newDevice("https-other");
    const wrong = moduleConnectionString(running.hub, "https-other").replace("DeviceId=https-other", "DeviceId=nobody");
    expect(
      (
        await httpDevice(wrong)
          .sendEvent(message("x"))
          .catch((e) => e)
      ).name,
    ).toBe("UnauthorizedError");
  });
});

describe("X.509 over HTTPS", () => {
  it("authenticates a self-signed device by its TLS client certificate: telemetry and C2D", async () => {
    const own = await certificate("https-x509");
    await newDevice("https-x509", {
      deviceId: "https-x509",
      authentication: { type: "selfSigned", x509Thumbprint: { primaryThumbprint: own.sha256 } },
    });
    const client = httpDevice("HostName=localhost;DeviceId=https-x509;x509=true");
    // Over Http, setOptions never calls back for certificate options: Microsoft's X.509 sample does not wait for it.
    void client.setOptions({ cert: own.cert, key: own.key });
    await client.sendEvent(message("signed"));
    // The same certificate over MQTT: the same stamp ("Create and read IoT Hub messages": type sas or x509).
    const overMqtt = DeviceClient.fromConnectionString("HostName=localhost;DeviceId=https-x509;x509=true", Mqtt);
    closers.push(() => overMqtt.close());
    await overMqtt.setOptions({ cert: own.cert, key: own.key });
    await overMqtt.sendEvent(message("signed"));
    const [overHttps, mqtt] = await eventsOf("https-x509", 2);
    expect(shapeOf(overHttps)).toEqual(shapeOf(mqtt));
    expect(JSON.parse(overHttps.systemProperties?.["iothub-connection-auth-method"] as string)).toMatchObject({
      scope: "device",
      type: "x509",
    });
    await service.send("https-x509", message("to the certificate"));
    const received = receiving(client, (m) => client.complete(m));
    await eventually(() => received.length === 1, "the message");
    expect(received[0].data.toString()).toBe("to the certificate");

    const stranger = await certificate("https-x509");
    const impostor = httpDevice("HostName=localhost;DeviceId=https-x509;x509=true");
    void impostor.setOptions({ cert: stranger.cert, key: stranger.key });
    expect((await impostor.sendEvent(message("x")).catch((e) => e)).name).toBe("UnauthorizedError");
  });

  it("authenticates a CA-signed device whose certificate chains to a CA in DIR/client-cas and names it", async () => {
    await newDevice("https-ca", { deviceId: "https-ca", authentication: { type: "certificateAuthority" } });
    const client = httpDevice("HostName=localhost;DeviceId=https-ca;x509=true");
    const signed = await certificate("https-ca", trustedCa);
    void client.setOptions({ cert: signed.cert, key: signed.key });
    await client.sendEvent(message("chained"));
    expect(shapeOf((await eventsOf("https-ca", 1))[0]).body).toBe("chained");
    const other = httpDevice("HostName=localhost;DeviceId=https-ca;x509=true");
    const wrongName = await certificate("someone-else", trustedCa);
    void other.setOptions({ cert: wrongName.cert, key: wrongName.key });
    expect((await other.sendEvent(message("x")).catch((e) => e)).name).toBe("UnauthorizedError");
  });
});

describe("cloud-to-device over HTTPS", () => {
  it("delivers with id, correlation id, expiry and properties; complete gives Success feedback", async () => {
    const client = httpDevice(await newDevice("https-c2d"));
    const feedback = await collectFeedback();
    const expiry = Date.now() + 600_000;
    await service.send(
      "https-c2d",
      message("hello", { messageId: "c2d-1", correlationId: "corr", ack: "full", expiryTimeUtc: expiry }, { k: "v" }),
    );
    const received = receiving(client, (m) => client.complete(m));
    await eventually(() => feedback.length === 1, "the Success feedback");
    const [got] = received;
    expect([got.data.toString(), got.messageId, got.correlationId, got.to]).toEqual([
      "hello",
      "c2d-1",
      "corr",
      "/devices/https-c2d/messages/deviceBound",
    ]);
    expect(new Date(got.expiryTimeUtc as string).getTime()).toBe(expiry);
    expect(got.properties.getValue("iothub-app-k")).toBe("v"); // the SDK keeps the header's name
    expect(feedback[0]).toMatchObject({ originalMessageId: "c2d-1", statusCode: "Success", deviceId: "https-c2d" });
    expect(running.hub.core.cloudToDevice.pendingFor("https-c2d")).toEqual([]);
  });

  it("reject gives Rejected feedback and the message never comes back", async () => {
    const client = httpDevice(await newDevice("https-reject"));
    const feedback = await collectFeedback();
    await service.send("https-reject", message("no thanks", { messageId: "r1", ack: "negative" }));
    const received = receiving(client, (m) => client.reject(m));
    await eventually(() => feedback.length === 1, "the Rejected feedback");
    expect([feedback[0].statusCode, feedback[0].description]).toEqual(["Rejected", "Message rejected"]);
    expect(received).toHaveLength(1);
    expect(running.hub.core.cloudToDevice.pendingFor("https-reject")).toEqual([]);
  });

  it("abandon puts the message back: it is received again, under a new lock token", async () => {
    const client = httpDevice(await newDevice("https-abandon"));
    await service.send("https-abandon", message("again", { messageId: "a1" }));
    const received = receiving(client, (m) => (received.length === 1 ? client.abandon(m) : client.complete(m)));
    await eventually(() => received.length === 2, "the message twice");
    expect(received.map((m) => m.messageId)).toEqual(["a1", "a1"]);
    expect(received[1].lockToken).not.toBe(received[0].lockToken);
    await eventually(() => running.hub.core.cloudToDevice.pendingFor("https-abandon").length === 0, "completed");
  });

  it("answers 204 to a receive with nothing queued, and 412 DeviceMessageLockLost to a settled lock token", async () => {
    const client = httpDevice(await newDevice("https-lock"));
    const empty = await rawRequest("GET", `/devices/https-lock/messages/deviceBound${API}`, {
      authorization: identityToken(running.hub, "https-lock"),
    });
    expect(empty.status).toBe(204);
    await service.send("https-lock", message("once", { messageId: "l1" }));
    let completed = false;
    const received = receiving(client, async (m) => {
      await client.complete(m);
      completed = true;
    });
    await eventually(() => completed, "the first completion");
    const late = await client.complete(received[0]).catch((e) => e);
    expect(late.response.statusCode).toBe(412);
    expect(late.response.headers["iothub-errorcode"]).toBe("DeviceMessageLockLost");
  });

  it("answers a receive with the headers azure-iot-cli-extension reads; an abandon counts one delivery", async () => {
    await newDevice("https-raw");
    const authorization = identityToken(running.hub, "https-raw");
    const path = `/devices/https-raw/messages/deviceBound`;
    await service.send("https-raw", message("raw", { messageId: "raw-1", ack: "full" }, { k: "v" }));
    const first = await rawRequest("GET", `${path}${API}`, { authorization });
    expect(first.status).toBe(200);
    expect(first.body).toBe("raw");
    expect(first.headers).toMatchObject({
      "iothub-messageid": "raw-1",
      "iothub-to": "/devices/https-raw/messages/deviceBound",
      "iothub-ack": "full",
      "iothub-deliverycount": "0",
      "iothub-app-k": "v",
    });
    expect(first.headers["iothub-enqueuedtime"]).toMatch(/^\d\d\/\d\d\/\d{4} \d{1,2}:\d\d:\d\d [AP]M$/);
    const lock = first.headers.etag!.replace(/"/g, "");
    expect((await rawRequest("GET", `${path}${API}`, { authorization })).status).toBe(204); // locked: invisible
    expect((await rawRequest("POST", `${path}/${lock}/abandon${API}`, { authorization })).status).toBe(204);
    const second = await rawRequest("GET", `${path}${API}`, { authorization });
    expect([second.headers["iothub-deliverycount"], second.headers.etag === first.headers.etag]).toEqual(["1", false]);
    const rejected = await rawRequest("DELETE", `${path}/${second.headers.etag!.replace(/"/g, "")}${API}&reject`, {
      authorization,
    });
    expect(rejected.status).toBe(204);
    expect((await rawRequest("DELETE", `${path}/${lock}${API}`, { authorization })).status).toBe(412);
  });

  it("leaves twins and methods to the SDK, which refuses them over HTTPS itself", async () => {
    const client = httpDevice(await newDevice("https-twin"));
    expect((await client.getTwin().catch((e) => e)).name).toBe("NotImplementedError");
    expect(() => client.onDeviceMethod("reboot", () => {})).toThrow("Direct methods are not implemented over HTTP.");
  });
});
