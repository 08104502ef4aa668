/**
 * @summary A fleet of lightweight module clients for the scale benchmark, run as a child process of bench.ts so that
 * the clients' TLS work is spread over the cores instead of queueing on one thread.
 *
 * Each client is MQTT 3.1.1 from mqtt-packet over node:tls, with the client id, username and SAS token the Azure SDK
 * would send (a full mqtt.js client costs about 3 ms of CPU each). Messages from the parent:
 *   { connect: [{ clientId, password }], bare?: true }  ->  { connected: n }   (bare: TLS handshakes only, no MQTT)
 *   afterwards, once every client got a desired patch   ->  { patched: n }
 *   "close"                                             ->  exits
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
  socket.on("data", (chunk) => parser.parse(chunk));
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

process.on("message", async (message: "close" | { connect: FleetMember[]; bare?: boolean }) => {
  if (message === "close") {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  }
  const patched = new Set<string>();
  const members = message.connect;
  const connected = await Promise.all(
    members.map((member) =>
      message.bare
        ? connectTls()
        : connectClient(member, () => {
            patched.add(member.clientId);
            if (patched.size === members.length) process.send!({ patched: patched.size });
          }),
    ),
  );
  sockets.push(...connected);
  process.send!({ connected: connected.length });
});
