/**
 * @summary Measures the AMQP attacks of issue 15 against a hub in this process: for each, how long the hub takes to
 * refuse it and how much the heap grows, then whether a valid Event Hubs client is still served. Not a test (no
 * timing belongs in one): run it by hand, with the test CA trusted and the garbage collector exposed:
 *   NODE_EXTRA_CA_CERTS=.localhub-test/ca.pem node --expose-gc --import tsx test/protocol/measure-amqp-attacks.ts
 */
import { EventHubConsumerClient } from "@azure/event-hubs";
import { createSasToken } from "../localhub";
import {
  AMQP_HEADER,
  NULLS_ARRAY,
  RawAmqp,
  SASL_HEADER,
  amqpOverTls,
  amqpOverWebSocket,
  attach,
  begin,
  bin,
  closedWithin,
  described,
  frame,
  list,
  map,
  nul,
  saslInit,
  str,
  transfer,
  uint,
} from "../helpers/amqp-raw";
import { ProtocolHub, startProtocolHub, tlsConnect } from "../helpers/raw";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapMb = () => (gc(), process.memoryUsage().heapUsed / 2 ** 20);

async function served(hub: ProtocolHub): Promise<string> {
  const client = new EventHubConsumerClient("$Default", hub.hub.eventHubConnectionString(), {
    retryOptions: { maxRetries: 0, timeoutInMs: 10_000 },
  });
  try {
    const started = Date.now();
    await client.getEventHubProperties();
    return `served (${Date.now() - started} ms)`;
  } catch (err) {
    return `NOT served: ${(err as Error).message}`;
  } finally {
    await client.close();
  }
}

async function measure(hub: ProtocolHub, name: string, attack: () => Promise<string>): Promise<void> {
  const before = heapMb();
  const started = Date.now();
  const outcome = await attack();
  const ms = Date.now() - started;
  const growth = heapMb() - before;
  console.log(
    `${name}: ${outcome}; ${ms} ms; heap ${growth >= 0 ? "+" : ""}${growth.toFixed(1)} MB; ${await served(hub)}`,
  );
}

/** Writes `bytes`, resolves how the connection ended: the CLOSE condition (if any) and whether it closed. */
async function refusal(client: RawAmqp, bytes: Buffer[], ms = 15_000): Promise<string> {
  const started = Date.now();
  client.write(...bytes);
  const closed = await closedWithin(client, ms);
  const close = client.frames.find((f) => f.code === 0x18);
  const condition = close && /(amqp|com\.microsoft):[a-z:-]+/.exec(close.body.toString("latin1"))?.[0];
  client.end();
  return `${closed ? `closed after ${Date.now() - started} ms` : "NOT closed"}${condition ? ` with ${condition}` : ""}`;
}

async function main(): Promise<void> {
  const hub = await startProtocolHub();
  const { hostName, connectionString } = hub.hub;
  const key = /SharedAccessKey=([^;]+)/.exec(connectionString)![1];
  try {
    await measure(hub, "1. sasl-init with an array32 of 2^32-1 nulls (TLS)", async () =>
      refusal(await amqpOverTls(hub.hub), [SASL_HEADER, saslInit("ANONYMOUS", NULLS_ARRAY)]),
    );
    await measure(hub, "1. the same over WebSockets", async () =>
      refusal(await amqpOverWebSocket(hub.hub), [SASL_HEADER, saslInit("ANONYMOUS", NULLS_ARRAY)]),
    );
    await measure(
      hub,
      "1. that array in a C2D message's properties, split over 2 frames, after SASL PLAIN",
      async () => {
        const client = await amqpOverTls(hub.hub);
        const token = createSasToken(hostName, key, Math.floor(Date.now() / 1000) + 3600, "iothubowner");
        client.write(SASL_HEADER, saslInit("PLAIN", bin(Buffer.from(`\0iothubowner@sas.root.${hostName}\0${token}`))));
        await client.next(0x44);
        await client.opened();
        client.write(begin(0), attach(0, 0, "/messages/devicebound"));
        await client.next(0x13);
        const message = Buffer.concat([
          described(0x73, list([str("m"), nul(), str(`/devices/${hub.probe.deviceId}/messages/devicebound`)])),
          described(0x74, map([[str("evil"), NULLS_ARRAY]])),
          described(0x75, bin(Buffer.from("x"))),
        ]);
        return refusal(client, [
          transfer(0, 0, 0, true, message.subarray(0, 30)),
          transfer(0, 0, 0, false, message.subarray(30)),
        ]);
      },
    );
    await measure(hub, "2. OPEN with max-frame-size 8", async () =>
      refusal(await amqpOverTls(hub.hub), [AMQP_HEADER, frame(described(0x10, list([str("x"), nul(), uint(8)])))]),
    );
    await measure(hub, "3. 3,000 BEGINs on channels 0-2999", async () => {
      const client = await (await amqpOverTls(hub.hub)).opened();
      const outcome = await refusal(
        client,
        Array.from({ length: 3000 }, (_, channel) => begin(channel)),
      );
      return `${outcome}, ${client.frames.filter((f) => f.code === 0x11).length} BEGINs answered`;
    });
    await measure(hub, "3. 20,000 ATTACHes on one session", async () => {
      const client = await (await amqpOverTls(hub.hub)).opened();
      const frames = [begin(0), ...Array.from({ length: 20_000 }, (_, handle) => attach(0, handle))];
      const outcome = await refusal(client, frames);
      return `${outcome}, ${client.frames.filter((f) => f.code === 0x12).length} ATTACHes answered`;
    });
    await measure(hub, "3. 16,000 ATTACHes over 250 sessions (64 each, within handle-max)", async () => {
      const client = await (await amqpOverTls(hub.hub)).opened();
      const frames = Array.from({ length: 250 }, (_, channel) => [
        begin(channel),
        ...Array.from({ length: 64 }, (_, handle) => attach(channel, handle)),
      ]).flat();
      const outcome = await refusal(client, frames);
      return `${outcome}, ${client.frames.filter((f) => f.code === 0x12).length} ATTACHes answered`;
    });
    const bigBegin = (bytes: number) =>
      frame(Buffer.concat([described(0x11, list([nul(), uint(0), uint(100), uint(100)])), Buffer.alloc(bytes)]));
    await measure(hub, "3. a 256 KB frame over TLS", async () =>
      refusal(await (await amqpOverTls(hub.hub)).opened(), [bigBegin(256 * 1024)]),
    );
    await measure(hub, "3. a 400 KB frame in one WebSocket message", async () =>
      refusal(await (await amqpOverWebSocket(hub.hub)).opened(), [bigBegin(400 * 1024)]),
    );
    await measure(hub, "4. 1,024 TLS connections that send nothing, then a valid client", async () => {
      // In batches: 1,024 handshakes at once can overrun the listen backlog on a busy machine.
      const sockets = [];
      for (let batch = 0; batch < 16; batch++) {
        sockets.push(...(await Promise.all(Array.from({ length: 64 }, () => tlsConnect(hub.hub.ports.amqp)))));
      }
      const started = Date.now();
      await Promise.all(
        sockets.map(
          (socket) => new Promise((resolve) => (socket.on("error", () => {}), socket.once("close", resolve))),
        ),
      );
      return `all ${sockets.length} closed ${Date.now() - started} ms after the last handshake`;
    });
    await measure(hub, "4. a 4-byte partial protocol header", async () =>
      refusal(await amqpOverTls(hub.hub), [AMQP_HEADER.subarray(0, 4)]),
    );
  } finally {
    await hub.hub.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
