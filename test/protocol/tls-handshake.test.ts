/**
 * Half-open TLS handshakes are closed after the handshake timeout, so idle connections cannot pile up until the
 * machine's file limit shuts every client out. The timeout is short here (limits.tlsHandshakeMs) to keep this fast.
 */
import type { Socket } from "node:net";
import { ProtocolHub, closedWithin, expectStillServed, startProtocolHub, tcpConnect } from "../helpers/raw";

const HANDSHAKE_MS = 300;
const HALF_OPEN = 200;

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub({ limits: { tlsHandshakeMs: HANDSHAKE_MS } })));
afterAll(() => hub.hub.stop());

async function halfOpen(port: number, send?: Buffer): Promise<Socket[]> {
  const sockets = await Promise.all(Array.from({ length: HALF_OPEN }, () => tcpConnect(port)));
  if (send) for (const socket of sockets) socket.write(send);
  return sockets;
}

async function expectAllClosedByTheHub(sockets: Socket[]): Promise<void> {
  try {
    const closed = await Promise.all(sockets.map((socket) => closedWithin(socket, HANDSHAKE_MS + 4000)));
    expect(closed.filter((wasClosed) => !wasClosed)).toHaveLength(0);
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

describe.each(["mqtt", "https"] as const)("on the %s port", (port) => {
  it(`${HALF_OPEN} connections that never start the TLS handshake are closed, and a valid client is still served`, async () => {
    await expectAllClosedByTheHub(await halfOpen(hub.hub.ports[port]));
    expect(hub.log.some((line) => /handshake/i.test(line))).toBe(true);
    await expectStillServed(hub);
  });

  it(`${HALF_OPEN} connections that stall after the first bytes of a ClientHello are closed`, async () => {
    // A TLS record header announcing a 512-byte handshake message, and nothing after it.
    const sockets = await halfOpen(hub.hub.ports[port], Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    await expectAllClosedByTheHub(sockets);
    await expectStillServed(hub);
  });
});
