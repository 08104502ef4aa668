/**
 * @summary A fleet of lightweight module clients for the scale benchmark, run as a child process of bench.ts so that
 * the clients' TLS work is spread over the cores instead of queueing on one thread.
 *
 * Each client is MQTT 3.1.1 from mqtt-packet over node:tls, with the client id, username and SAS token the Azure SDK
 * would send (a full mqtt.js client costs about 3 ms of CPU each). Messages from the parent:
 *   { connect: [{ clientId, password }], bare?: true }  ->  { connected: n }   (bare: TLS handshakes only, no MQTT)
 *   afterwards, once every client got a desired patch   ->  { patched: n }
 *   "close"                                             ->  exits
 * The hub may be on other ports than 8883: the bench starts fleets with port-redirect.cjs preloaded (NODE_OPTIONS).
 */
import * as tls from "node:tls";
import * as mqttPacket from "mqtt-packet";

export interface FleetMember {
  clientId: string;
  password: string;
}

// One TLS context for all: building one loads the whole CA store, about 2 ms each.
const context = tls.createSecureContext();

function connectTls(): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "localhost", port: 8883, servername: "localhost", secureContext: context });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Connects, subscribes to desired patches, resolves once subscribed; calls `onPatch` for each patch. */
async function connectClient({ clientId, password }: FleetMember, onPatch: () => void): Promise<tls.TLSSocket> {
  const socket = await connectTls();
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  socket.on("data", (chunk: Buffer) => parser.parse(chunk));
  const username = `localhost/${clientId}/?api-version=2021-04-12`;
  socket.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: false,
      clientId,
      keepalive: 180,
      username,
      password: Buffer.from(password),
    }),
  );
  return new Promise((resolve, reject) => {
    parser.on("packet", (packet: mqttPacket.Packet) => {
      if (packet.cmd === "connack") {
        if (packet.returnCode !== 0) return reject(new Error(`${clientId}: CONNACK ${packet.returnCode}`));
        socket.write(
          mqttPacket.generate({
            cmd: "subscribe",
            messageId: 1,
            subscriptions: [{ topic: "$iothub/twin/PATCH/properties/desired/#", qos: 0 }],
          }),
        );
      } else if (packet.cmd === "suback") resolve(socket);
      else if (packet.cmd === "publish") onPatch();
    });
  });
}

const sockets: tls.TLSSocket[] = [];
/**
 * Handshakes in flight per fleet: beyond a few hundred at once the hub's listen backlog (511) overflows, and the
 * kernel's SYN retries (1 s, then 3 s) would be measured instead of the hub.
 */
const IN_FLIGHT = 200;

async function connectAll(members: FleetMember[], bare: boolean): Promise<number> {
  const patched = new Set<string>();
  const queue = [...members];
  const connectOne = (member: FleetMember) =>
    bare
      ? connectTls()
      : connectClient(member, () => {
          patched.add(member.clientId);
          if (patched.size === members.length) process.send!({ patched: patched.size });
        });
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      for (let member = queue.shift(); member; member = queue.shift()) sockets.push(await connectOne(member));
    }),
  );
  return members.length;
}

process.on("message", (message: "close" | { connect: FleetMember[]; bare?: boolean }) => {
  if (message === "close") {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  }
  connectAll(message.connect, message.bare === true).then(
    (connected) => process.send!({ connected }),
    (err: Error) => {
      console.error(`fleet: ${err.message}`);
      process.exit(1);
    },
  );
});

// If the bench ends without saying "close" (an error, Ctrl-C), do not stay behind holding sockets.
process.on("disconnect", () => process.exit(0));
