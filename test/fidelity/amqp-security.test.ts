/**
 * Who may use the AMQP edge: every link (C2D send, feedback, $management, partition readers, the redirect) refuses
 * a wrong key, an expired token and a policy without ServiceConnect; bad bytes never take the hub down.
 */
import { createHmac } from "node:crypto";
import { Client as ServiceClient } from "azure-iothub";
import { Message } from "azure-iot-device";
import { EventHubConsumerClient, earliestEventPosition } from "@azure/event-hubs";
import { createSasToken } from "../localhub";
import { eventually } from "../helpers/hub";
import { amqpInMemory, timeout } from "../helpers/raw";
import { MessagingHub, startMessagingHub } from "./messaging-hub";
import { readRedirect } from "./redirect-client";

let running: MessagingHub;
const hubLog: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  running = await startMessagingHub(undefined, { log: (line) => hubLog.push(line) });
  await running.hub.core.identities.putDevice("dev1", { deviceId: "dev1" }, undefined);
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
});
afterAll(() => running.stop());

const policy = (name: string) => running.hub.core.policies.find(name)!;
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** An IoT Hub connection string for a policy, with its key or another. */
function hubConnectionString(policyName: string, key = policy(policyName).primaryKey): string {
  return `HostName=localhost;SharedAccessKeyName=${policyName};SharedAccessKey=${key}`;
}
const WRONG_KEY = Buffer.alloc(32, 9).toString("base64");

function serviceClient(connectionString: string): ServiceClient {
  const client = ServiceClient.fromConnectionString(connectionString);
  closers.push(() => client.close());
  return client;
}

function eventHubClient(connectionString: string): EventHubConsumerClient {
  const client = new EventHubConsumerClient("$Default", connectionString, { retryOptions: { maxRetries: 0 } });
  closers.push(() => client.close());
  return client;
}

/** An Event Hubs SAS token (signed with the key's text, as Event Hubs clients do). */
function eventHubToken(policyName: string, expiry: number): string {
  const sr = encodeURIComponent(`sb://${running.hub.amqp.endpointHost}/${running.hub.amqp.entityName}`);
  const sig = createHmac("sha256", policy(policyName).primaryKey).update(`${sr}\n${expiry}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}&skn=${policyName}`;
}

describe("cloud-to-device links", () => {
  it("refuses a send with a wrong key", async () => {
    const client = serviceClient(hubConnectionString("service", WRONG_KEY));
    // The SDK wraps the CBS refusal: "Could not send message", caused by an UnauthorizedError.
    await expect(client.send("dev1", new Message("x"))).rejects.toMatchObject({
      amqpError: { name: "UnauthorizedError", message: expect.stringMatching(/signature does not match/) },
    });
  });

  it("refuses a send with an expired token", async () => {
    const expired = createSasToken("localhost", policy("service").primaryKey, inAnHour() - 7200, "service");
    const client = ServiceClient.fromSharedAccessSignature(expired);
    closers.push(() => client.close());
    await expect(client.send("dev1", new Message("x"))).rejects.toMatchObject({
      amqpError: { name: "UnauthorizedError", message: expect.stringMatching(/expired/) },
    });
  });

  it("refuses sending and reading feedback to a policy without ServiceConnect", async () => {
    const client = serviceClient(hubConnectionString("registryReadWrite"));
    await expect(client.send("dev1", new Message("x"))).rejects.toMatchObject({ name: "UnauthorizedError" });
    // The feedback link attaches, then the hub detaches it with amqp:unauthorized-access; the SDK treats an error
    // on an attached link as the connection's, and the client reports 'disconnect' with it.
    await client.open();
    const disconnected = new Promise<any>((resolve) => client.once("disconnect", resolve));
    await client.getFeedbackReceiver().catch(() => {});
    // The reason is the AMQP error as rhea decoded it: [condition, description, info].
    const { reason } = await disconnected;
    expect(JSON.stringify(reason.value)).toMatch(/amqp:unauthorized-access.*lacks the permission ServiceConnect/);
  });

  it("lets the service policy send", async () => {
    const client = serviceClient(hubConnectionString("service"));
    await client.send("dev1", new Message("allowed"));
    expect(running.hub.core.cloudToDevice.pendingFor("dev1")).toHaveLength(1);
  });
});

describe("Event Hubs-compatible endpoint", () => {
  const endpoint = () => `Endpoint=sb://${running.hub.amqp.endpointHost}/`;
  const entity = () => `EntityPath=${running.hub.amqp.entityName}`;

  it("refuses $management to a wrong key, an expired token and a policy without ServiceConnect", async () => {
    const refused = [
      `${endpoint()};SharedAccessKeyName=service;SharedAccessKey=${WRONG_KEY};${entity()}`,
      `${endpoint()};SharedAccessSignature=${eventHubToken("service", inAnHour() - 7200)};${entity()}`,
      running.hub.eventHubConnectionString("registryRead"),
    ];
    for (const connectionString of refused) {
      await expect(eventHubClient(connectionString).getEventHubProperties()).rejects.toThrow(
        /signature does not match|expired|lacks the permission ServiceConnect/,
      );
    }
    const token = `${endpoint()};SharedAccessSignature=${eventHubToken("service", inAnHour())};${entity()}`;
    await expect(eventHubClient(token).getEventHubProperties()).resolves.toMatchObject({ partitionIds: ["0", "1"] });
  });

  it("refuses a partition reader to a policy without ServiceConnect", async () => {
    const client = eventHubClient(running.hub.eventHubConnectionString("registryRead"));
    let failure: Error | undefined;
    const subscription = client.subscribe(
      "0",
      {
        processEvents: () => Promise.resolve(),
        processError: (err) => Promise.resolve(void (failure ??= err)),
      },
      { startPosition: earliestEventPosition },
    );
    await eventually(() => failure !== undefined, "the refusal");
    await subscription.close();
    expect(failure!.message).toMatch(/lacks the permission ServiceConnect/);
  });

  it("refuses the redirect route to a wrong password and to a policy without ServiceConnect", async () => {
    const port = running.hub.amqp.port;
    await expect(
      readRedirect(hubConnectionString("service"), port, "SharedAccessSignature sr=x&sig=y&se=1"),
    ).rejects.toBeDefined();
    await expect(readRedirect(hubConnectionString("registryRead"), port)).rejects.toMatchObject({
      condition: "amqp:unauthorized-access",
    });
    await expect(readRedirect(hubConnectionString("service"), port)).resolves.toContain("EntityPath=");
  });
});

describe("bad bytes", () => {
  /** Sends `bytes` straight to the AMQP edge (parsing needs no TLS), and waits for the hub to close, 2 s at most. */
  async function sendRaw(bytes: Buffer): Promise<void> {
    const { stream, closed } = amqpInMemory(running.hub);
    stream.write(bytes);
    await Promise.race([closed, timeout(2000)]);
    stream.destroy();
  }

  it("drops garbage, a broken header and an oversized frame, and keeps serving", async () => {
    const before = hubLog.length;
    await sendRaw(Buffer.from("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    await sendRaw(Buffer.from([0x41, 0x4d, 0x51, 0x50, 9, 9, 9, 9]));
    // A valid AMQP header, then a frame that announces 1 GB.
    await sendRaw(
      Buffer.concat([Buffer.from("AMQP\x00\x01\x00\x00", "latin1"), Buffer.from([0x40, 0, 0, 0, 2, 0, 0, 0])]),
    );
    expect(hubLog.slice(before).join("\n")).toMatch(/protocol error|frame of/);
    await expect(eventHubClient(running.hub.eventHubConnectionString()).getEventHubProperties()).resolves.toBeDefined();
  });

  it("refuses a message that grows past 1 MB with amqp:link:message-size-exceeded, and keeps serving", async () => {
    const before = hubLog.length;
    const client = serviceClient(hubConnectionString("service"));
    await expect(client.send("dev1", new Message(Buffer.alloc(2 * 1024 * 1024, 1)))).rejects.toMatchObject({
      name: "MessageTooLargeError",
    });
    expect(hubLog.slice(before).join("\n")).toMatch(/a message of more than 1048576 bytes/);
    await expect(
      serviceClient(hubConnectionString("service")).send("dev1", new Message("small")),
    ).resolves.toBeDefined();
  });
});
