/**
 * The AMQP limits the hub announces are the limits it enforces: channel-max, handle-max, links per connection, and
 * the wait for SASL and OPEN (shortened here). Each breach ends that connection with one log line and the AMQP
 * error for it; valid AMQP, REST and MQTT clients are still served afterwards.
 */
import { AMQP_LIMITS } from "../localhub";
import {
  AMQP_HEADER,
  RawAmqp,
  SASL_HEADER,
  amqpOverTls,
  amqpOverWebSocket,
  attach,
  begin,
  closedWithin,
  bool,
  described,
  detach,
  expectAmqpServed,
  frame,
  list,
  nul,
  uint,
} from "../helpers/amqp-raw";
import { ProtocolHub, expectStillServed, startProtocolHub } from "../helpers/raw";

const OPEN_TIMEOUT_MS = 500;

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub({ limits: { amqpOpenTimeoutMs: OPEN_TIMEOUT_MS } })));
afterAll(() => hub.hub.stop());

async function expectServed(): Promise<void> {
  await expectAmqpServed(hub.hub);
  await expectStillServed(hub);
}

const refusals = (since: number) => hub.log.slice(since).filter((line) => /AMQP (refused|dropped)/.test(line));

/** Sends `frames`, then checks the connection was closed with `condition` and one log line matching `cause`. */
async function expectClosedWith(client: RawAmqp, frames: Buffer[], condition: string, cause: RegExp): Promise<void> {
  const before = hub.log.length;
  client.write(...frames);
  expect(await client.closeCondition()).toBe(condition);
  expect(await closedWithin(client, 3000)).toBe(true);
  expect(refusals(before)).toEqual([expect.stringMatching(cause)]);
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe("sessions", () => {
  it(`BEGIN on channel ${AMQP_LIMITS.CHANNEL_MAX + 1} is refused: ${AMQP_LIMITS.CHANNEL_MAX + 1} sessions at most`, async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    const frames = range(AMQP_LIMITS.CHANNEL_MAX + 100).map((channel) => begin(channel));
    await expectClosedWith(
      client,
      frames,
      "amqp:connection:framing-error",
      new RegExp(`above channel-max ${AMQP_LIMITS.CHANNEL_MAX}`),
    );
    expect(client.frames.filter((f) => f.code === 0x11)).toHaveLength(AMQP_LIMITS.CHANNEL_MAX + 1);
    await expectServed();
  });

  it("of 3,000 BEGINs on one channel the second is refused, and one session is answered", async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    const frames = range(3000).map(() => begin(0));
    await expectClosedWith(client, frames, "amqp:connection:framing-error", /channel 0, which has a session/);
    expect(client.frames.filter((f) => f.code === 0x11)).toHaveLength(1);
    await expectServed();
  });
});

describe("links", () => {
  it(`an ATTACH with a handle above handle-max ${AMQP_LIMITS.HANDLE_MAX} is refused`, async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    const frames = [begin(0), ...range(AMQP_LIMITS.HANDLE_MAX + 50).map((handle) => attach(0, handle))];
    await expectClosedWith(
      client,
      frames,
      "amqp:connection:framing-error",
      new RegExp(`above handle-max ${AMQP_LIMITS.HANDLE_MAX}`),
    );
    expect(client.frames.filter((f) => f.code === 0x12)).toHaveLength(AMQP_LIMITS.HANDLE_MAX + 1);
    await expectServed();
  });

  it(`the link after ${AMQP_LIMITS.MAX_LINKS_PER_CONNECTION} on one connection is refused with amqp:resource-limit-exceeded`, async () => {
    const client = await (await amqpOverWebSocket(hub.hub)).opened();
    const frames = range(10).flatMap((channel) => [
      begin(channel),
      ...range(40).map((handle) => attach(channel, handle)),
    ]);
    await expectClosedWith(client, frames, "amqp:resource-limit-exceeded", /more than 256 links on one connection/);
    expect(client.frames.filter((f) => f.code === 0x12)).toHaveLength(AMQP_LIMITS.MAX_LINKS_PER_CONNECTION);
    await expectServed();
  });

  it("links detached free their place: 400 attached and detached in turn on one session are all served", async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    client.write(begin(0));
    for (const round of range(10)) {
      client.write(...range(40).map((handle) => attach(0, handle, "$cbs", `round-${round}-${handle}`)));
      for (let wait = 0; client.frames.filter((f) => f.code === 0x12).length < 40 && wait < 200; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(client.frames.filter((f) => f.code === 0x12)).toHaveLength(40);
      client.frames.splice(0);
      client.write(...range(40).map((handle) => detach(0, handle)));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(client.stream.destroyed).toBe(false);
    client.end();
  });
});

describe(`a connection without SASL and OPEN within the limit (${OPEN_TIMEOUT_MS} ms here, 10 s by default)`, () => {
  it.each([
    ["sends nothing", [] as Buffer[]],
    ["sends 4 bytes of a protocol header", [AMQP_HEADER.subarray(0, 4)]],
    ["completes no SASL", [SASL_HEADER]],
    ["sends the AMQP header but no OPEN", [AMQP_HEADER]],
  ])("is dropped when it %s, over TLS and WebSockets", async (_what, bytes) => {
    const before = hub.log.length;
    const clients = [await amqpOverTls(hub.hub), await amqpOverWebSocket(hub.hub)];
    for (const client of clients) if (bytes.length) client.write(...bytes);
    for (const client of clients) expect(await closedWithin(client, OPEN_TIMEOUT_MS + 2000)).toBe(true);
    expect(refusals(before)).toEqual([
      expect.stringMatching(new RegExp(`no SASL and OPEN within ${OPEN_TIMEOUT_MS} ms`)),
      expect.stringMatching(new RegExp(`no SASL and OPEN within ${OPEN_TIMEOUT_MS} ms`)),
    ]);
    await expectServed();
  });

  it("is not dropped once it has opened", async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    expect(await closedWithin(client, OPEN_TIMEOUT_MS + 500)).toBe(false);
    client.end();
  });
});

describe("a session the client has ended", () => {
  it("settlements and credit the client still sends on its channel are dropped, not the connection", async () => {
    const client = await (await amqpOverTls(hub.hub)).opened();
    const sessions = () => client.frames.filter((f) => f.code === 0x11).length;
    client.write(begin(0));
    await client.next(0x11);
    client.write(frame(described(0x17, list([])), { channel: 0 }));
    await client.next(0x17);
    // What the Event Hubs client sends while it closes: the settlement of a delivery it already had, then credit.
    const accepted = described(0x24, list([]));
    client.write(
      frame(described(0x15, list([bool(true), uint(0), nul(), bool(true), accepted])), { channel: 0 }),
      frame(described(0x13, list([uint(0), uint(100), uint(0), uint(100)])), { channel: 0 }),
      begin(1),
    );
    const deadline = Date.now() + 5000;
    while (sessions() < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sessions()).toBe(2);
    expect(client.frames.some((f) => f.code === 0x18)).toBe(false);
    client.end();
  });
});
