/**
 * AMQP input is bounded before rhea decodes it: encodings that announce more than they hold (before and after
 * authentication, in a message split over frames), frames above the size in force and a peer's max-frame-size below
 * 512 close that connection with the AMQP error for it, at once. After each, valid AMQP, REST and MQTT clients are
 * still served.
 */
import { AMQP_LIMITS, createSasToken } from "../localhub";
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
  expectAmqpServed,
  frame,
  list,
  map,
  nul,
  saslInit,
  str,
  transfer,
  uint,
} from "../helpers/amqp-raw";
import { ProtocolHub, expectStillServed, startProtocolHub } from "../helpers/raw";

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub()));
afterAll(() => hub.hub.stop());

const over = (transport: "tls" | "websocket") =>
  transport === "tls" ? amqpOverTls(hub.hub) : amqpOverWebSocket(hub.hub);

async function expectServed(): Promise<void> {
  await expectAmqpServed(hub.hub);
  await expectStillServed(hub);
}

/** Runs `attack` and checks that the hub logged one refusal naming `cause` and closed the connection at once. */
async function expectRefused(client: RawAmqp, cause: RegExp, attack: () => void): Promise<void> {
  const before = hub.log.length;
  attack();
  expect(await closedWithin(client, 3000)).toBe(true);
  expect(hub.log.slice(before).filter((line) => /AMQP refused/.test(line))).toEqual([expect.stringMatching(cause)]);
}

/** SASL PLAIN as iothubowner, then OPEN: an authenticated connection. */
async function authenticated(client: RawAmqp): Promise<RawAmqp> {
  const { hostName, connectionString } = hub.hub;
  const key = /SharedAccessKey=([^;]+)/.exec(connectionString)![1];
  const token = createSasToken(hostName, key, Math.floor(Date.now() / 1000) + 3600, "iothubowner");
  client.write(SASL_HEADER, saslInit("PLAIN", bin(Buffer.from(`\0iothubowner@sas.root.${hostName}\0${token}`))));
  const outcome = await client.next(0x44);
  expect(outcome.body[outcome.body.length - 1]).toBe(0); // sasl-outcome code ok
  return client.opened();
}

describe.each(["tls", "websocket"] as const)("over %s", (transport) => {
  it("a sasl-init holding an array that announces 2^32-1 nulls is refused at once, and the hub keeps serving", async () => {
    const client = await over(transport);
    const started = Date.now();
    await expectRefused(client, /a count of 4294967295 in 5 bytes/, () =>
      client.write(SASL_HEADER, saslInit("ANONYMOUS", NULLS_ARRAY)),
    );
    expect(Date.now() - started).toBeLessThan(1000);
    await expectServed();
  });

  it("a C2D message split over two frames, its application properties holding that array, is refused after authentication", async () => {
    const client = await authenticated(await over(transport));
    client.write(begin(0), attach(0, 0, "/messages/devicebound"));
    await client.next(0x13); // FLOW: the hub gives credit
    const message = Buffer.concat([
      described(0x73, list([str("mid-1"), nul(), str(`/devices/${hub.probe.deviceId}/messages/devicebound`)])),
      described(0x74, map([[str("evil"), NULLS_ARRAY]])),
      described(0x75, bin(Buffer.from("x"))),
    ]);
    await expectRefused(client, /a count of 4294967295 in 5 bytes \(amqp:decode-error\)/, () =>
      client.write(transfer(0, 0, 0, true, message.subarray(0, 30)), transfer(0, 0, 0, false, message.subarray(30))),
    );
    await expectServed();
  });

  it("an OPEN with max-frame-size 8 is refused with amqp:connection:framing-error", async () => {
    const client = await over(transport);
    await expectRefused(client, /max-frame-size 8 is below 512/, () =>
      client.write(AMQP_HEADER, frame(described(0x10, list([str("tiny"), nul(), uint(8)])))),
    );
    expect(await client.closeCondition()).toBe("amqp:connection:framing-error");
    await expectServed();
  });

  it("a SASL frame above 512 bytes is refused before it is decoded", async () => {
    const client = await over(transport);
    await expectRefused(client, /a frame of \d+ bytes \(at most 512\)/, () =>
      client.write(SASL_HEADER, saslInit("ANONYMOUS", bin(Buffer.alloc(600, 0x61)))),
    );
    expect(client.frames.some((f) => f.code === 0x44)).toBe(false); // no sasl-outcome
    await expectServed();
  });
});

describe("frames above the 64 KB we announce", () => {
  it("over TLS, a frame of 100 KB is refused with amqp:connection:framing-error before it is read", async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    // A valid BEGIN with 100 KB after it: read whole, rhea would answer it.
    const big = frame(
      Buffer.concat([described(0x11, list([nul(), uint(0), uint(100), uint(100)])), Buffer.alloc(100 * 1024)]),
    );
    await expectRefused(
      client,
      new RegExp(`a frame of ${big.length} bytes \\(at most ${AMQP_LIMITS.MAX_FRAME_SIZE}\\)`),
      () => client.write(big),
    );
    expect(await client.closeCondition()).toBe("amqp:connection:framing-error");
    expect(client.frames.some((f) => f.code === 0x11)).toBe(false); // no BEGIN answered
    await expectServed();
  });

  it("over WebSockets, a message of 400 KB is refused by the WebSocket layer (1009) before it is buffered whole", async () => {
    const client = await amqpOverWebSocket(hub.hub);
    await client.opened();
    client.write(
      frame(Buffer.concat([described(0x11, list([nul(), uint(0), uint(100), uint(100)])), Buffer.alloc(400 * 1024)])),
    );
    expect(await closedWithin(client, 3000)).toBe(true);
    expect(client.frames.some((f) => f.code === 0x11)).toBe(false);
    await expectServed();
  });
});
