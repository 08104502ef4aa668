/**
 * The benchmark's load generators: an SDK-like MQTT device, bare MQTT senders (mqtt-packet over TLS: an mqtt.js
 * client costs more CPU per message than the hub does), and a bare Event Hubs partition reader.
 */
import { createHmac } from "node:crypto";
import * as tls from "node:tls";
import * as mqtt from "mqtt";
import * as mqttPacket from "mqtt-packet";
import { Connection, EventContext, Message as AmqpMessage, create_container, types } from "rhea";
import { createSasToken } from "../localhub";

/** Messages each sender keeps in flight (published, not yet acknowledged). */
export const WINDOW = 200;

export function field(connectionString: string, name: string): string {
  return new RegExp(`(?:^|;)${name}=([^;]*)`).exec(connectionString)?.[1] ?? "";
}

export async function connectDevice(
  host: string,
  port: number,
  deviceId: string,
  key: string,
): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(`mqtts://${host}:${port}`, {
    clientId: deviceId,
    username: `${host}/${deviceId}/?api-version=2021-04-12`,
    password: createSasToken(`${host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600),
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
}

/**
 * A bare MQTT sender (mqtt-packet over TLS, as the SDK would connect): an mqtt.js client costs the load generator
 * more CPU per message than the hub spends on it, and this machine has two cores.
 */
export async function connectSender(host: string, port: number, deviceId: string, key: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host, port, servername: host });
  await new Promise((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  socket.write(
    mqttPacket.generate({
      cmd: "connect",
      protocolId: "MQTT",
      protocolVersion: 4,
      clean: false,
      keepalive: 180,
      clientId: deviceId,
      username: `${host}/${deviceId}/?api-version=2021-04-12`,
      password: Buffer.from(createSasToken(`${host}/devices/${deviceId}`, key, Math.floor(Date.now() / 1000) + 3600)),
    }),
  );
  const connack: Buffer = await new Promise((resolve) => socket.once("data", resolve));
  if (connack[3] !== 0) throw new Error(`${deviceId}: CONNACK ${connack[3]}`);
  return socket;
}

/**
 * Publishes `count` copies of one QoS 1 message with at most WINDOW unacknowledged. The hub sends this client
 * nothing but 4-byte PUBACKs, so counting bytes counts acknowledgements.
 */
export function blast(socket: tls.TLSSocket, topic: string, count: number): Promise<void> {
  const template = mqttPacket.generate({
    cmd: "publish",
    topic,
    payload: Buffer.from('{"t":0}'),
    qos: 1,
    messageId: 1,
    retain: false,
    dup: false,
  });
  const idAt = template.length - 7 - 2;
  let sent = 0;
  let acknowledged = 0;
  const sendUpTo = (limit: number) => {
    const batch: Buffer[] = [];
    while (sent < limit) {
      const packet = Buffer.from(template);
      packet.writeUInt16BE((sent % 65_535) + 1, idAt);
      batch.push(packet);
      sent++;
    }
    if (batch.length) socket.write(Buffer.concat(batch));
  };
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      acknowledged += chunk.length / 4;
      if (acknowledged >= count) return resolve();
      if (sent - acknowledged <= WINDOW / 2) sendUpTo(Math.min(count, acknowledged + WINDOW));
    });
    sendUpTo(Math.min(count, WINDOW));
  });
}

/**
 * A bare Event Hubs partition reader (rhea, CBS put-token, selector filter), for the end-to-end latency of the hub
 * itself: EventHubConsumerClient waits 20 ms after the first event of a batch (its read interval) before it calls
 * processEvents, which would hide what the hub does.
 */
export async function openRawReader(
  eventHubConnectionString: string,
  partitionId: string,
  afterSequenceNumber: number,
  onMessage: (message: AmqpMessage) => void,
  credit = 100,
): Promise<Connection> {
  const endpoint = new URL(field(eventHubConnectionString, "Endpoint"));
  const keyName = field(eventHubConnectionString, "SharedAccessKeyName");
  const key = field(eventHubConnectionString, "SharedAccessKey");
  const entity = field(eventHubConnectionString, "EntityPath");
  const address = `${entity}/ConsumerGroups/$Default/Partitions/${partitionId}`;
  const audience = encodeURIComponent(`sb://${endpoint.host}/${address}`);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  const signature = createHmac("sha256", key).update(`${audience}\n${expiry}`).digest("base64");
  const token = `SharedAccessSignature sr=${audience}&sig=${encodeURIComponent(signature)}&se=${expiry}&skn=${keyName}`;
  const connection = create_container().connect({
    transport: "tls",
    host: endpoint.hostname,
    port: Number(endpoint.port || 5671),
    servername: endpoint.hostname,
    reconnect: false,
  } as never);
  const replies = connection.open_receiver({ source: { address: "$cbs" }, target: { address: "cbs-bench" } });
  const requests = connection.open_sender({ target: { address: "$cbs" } });
  await new Promise<void>((resolve, reject) => {
    replies.on("message", (context: EventContext) =>
      context.message?.application_properties?.["status-code"] === 200 ? resolve() : reject(new Error("put-token")),
    );
    requests.once("sendable", () =>
      requests.send({
        message_id: "put-token",
        reply_to: "cbs-bench",
        application_properties: {
          operation: "put-token",
          type: "servicebus.windows.net:sastoken",
          name: decodeURIComponent(audience),
        },
        body: token,
      }),
    );
  });
  const reader = connection.open_receiver({
    source: {
      address,
      filter: {
        "apache.org:selector-filter:string": types.wrap_described(
          `amqp.annotation.x-opt-sequence-number > '${afterSequenceNumber}'`,
          77567109365764 /* 0x468C00000004, the selector filter descriptor */,
        ),
      },
    },
    credit_window: credit,
  });
  reader.on("message", (context: EventContext) => onMessage(context.message!));
  await new Promise((resolve) => reader.once("receiver_open", resolve));
  return connection;
}
