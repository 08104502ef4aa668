/**
 * Raw clients for the protocol tests: HTTPS requests, TLS and TCP sockets, MQTT packets over TLS, WebSockets or an
 * in-memory stream, all against a hub on ephemeral ports, so that tests can send what no SDK would and still run in
 * parallel. Tests of parsing, limits and garbage use the in-memory stream: no handshake, no socket, same edge code.
 */
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { Duplex, duplexPair } from "node:stream";
import * as mqtt from "mqtt-packet";
import WebSocket, { createWebSocketStream } from "ws";
import { createSasToken, Hub, HubOptions, JournalIo, JournalStore, startHub, type StoredRecord } from "../localhub";
import { copyTestCertificates, tempDir } from "./hub";

export const API = "api-version=2021-04-12";
const LOOPBACK = "127.0.0.1";
const SERVER_NAME = "localhost"; // the name the test certificate is issued for

/**
 * The limits a test may shorten so that it runs in milliseconds (startHub's `limits`: the TLS handshake and the wait
 * for CONNECT). Other limits are the hub's constants.
 */
export type HubLimits = NonNullable<HubOptions["limits"]>;

export interface ProtocolHub {
  hub: Hub;
  /** Every line the hub logged, in order. */
  log: string[];
  /** A device made for checking that the hub still serves a valid client. */
  probe: Device;
}

/**
 * Starts a hub on ephemeral ports with a log the test can read, plus a probe device. In memory by default;
 * `storeIo` gives it a journal on a disk the test controls (the store's own log lines go to the same log).
 */
export async function startProtocolHub(
  options: { limits?: HubLimits; storeIo?: JournalIo; inMemory?: boolean; dataDir?: string } = {},
): Promise<ProtocolHub> {
  const dataDir = options.dataDir ?? tempDir("protocol-");
  copyTestCertificates(dataDir);
  const log: string[] = [];
  const toLog = (line: string) => log.push(line);
  const store = options.storeIo
    ? await JournalStore.open<StoredRecord>(path.join(dataDir, "state"), { io: options.storeIo, log: toLog })
    : undefined;
  const hub = await startHub({
    dataDir,
    inMemory: options.inMemory ?? true,
    httpsPort: 0,
    mqttPort: 0,
    log: toLog,
    store,
    limits: options.limits,
  });
  const probe = await createDevice(hub, "probe");
  return { hub, log, probe };
}

// ---- tokens and identities, over the wire only ----

function ownerKey(hub: Hub): { keyName: string; key: string } {
  const fields = new Map(
    hub.connectionString
      .split(";")
      .map((part) => [part.slice(0, part.indexOf("=")), part.slice(part.indexOf("=") + 1)]),
  );
  return { keyName: fields.get("SharedAccessKeyName")!, key: fields.get("SharedAccessKey")! };
}

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** An iothubowner token; `scope` below the host name narrows it (e.g. "devices/devA"). */
export function ownerToken(hub: Hub, scope?: string): string {
  const { keyName, key } = ownerKey(hub);
  return createSasToken(scope ? `${hub.hostName}/${scope}` : hub.hostName, key, inAnHour(), keyName);
}

export interface Device {
  deviceId: string;
  moduleId?: string;
  primaryKey: string;
  /** The identity's own SAS token, as a device SDK makes it. */
  token(): string;
}

/** Creates a device (or a module on an existing device) through REST, with hub-generated keys; reads it if it exists. */
export async function createDevice(hub: Hub, deviceId: string, moduleId?: string): Promise<Device> {
  const path = `/devices/${encodeURIComponent(deviceId)}${moduleId ? `/modules/${encodeURIComponent(moduleId)}` : ""}`;
  const body = JSON.stringify(moduleId ? { deviceId, moduleId } : { deviceId });
  let response = await rest(hub, "PUT", path, { token: ownerToken(hub), body });
  // A hub restarted on its old state has the identity already: read its keys instead.
  if (response.status === 409) response = await rest(hub, "GET", path, { token: ownerToken(hub) });
  if (response.status !== 200) throw new Error(`creating ${path} answered ${response.status}: ${response.body}`);
  const identity = JSON.parse(response.body) as { authentication: { symmetricKey: { primaryKey: string } } };
  const primaryKey = identity.authentication.symmetricKey.primaryKey;
  const resource = `${hub.hostName}/devices/${deviceId}${moduleId ? `/modules/${moduleId}` : ""}`;
  return { deviceId, moduleId, primaryKey, token: () => createSasToken(resource, primaryKey, inAnHour()) };
}

// ---- HTTPS ----

export interface RawResponse {
  status: number;
  headers: import("node:http").IncomingHttpHeaders;
  body: string;
}

/** One HTTPS request on its own connection; `path` gets the SDK's api-version unless it has a query already. */
export function rest(
  hub: Hub,
  method: string,
  path: string,
  options: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: LOOPBACK,
        servername: SERVER_NAME,
        port: hub.ports.https,
        method,
        path: path.includes("?") ? path : `${path}?${API}`,
        agent: false,
        headers: {
          ...(options.token ? { Authorization: options.token } : {}),
          ...(options.body !== undefined ? { "Content-Type": "application/json; charset=utf-8" } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

// ---- sockets ----

export function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: LOOPBACK, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

export function tlsConnect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: LOOPBACK, servername: SERVER_NAME, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Resolves true when the peer closes `socket` within `ms`; reads (and drops) what arrives meanwhile. */
export function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  socket.on("error", () => {}); // a reset is a close too
  socket.resume();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms).unref();
    socket.once("close", () => (clearTimeout(timer), resolve(true)));
  });
}

/** Writes raw bytes on a fresh TLS connection to the HTTPS port and returns all that comes back before `ms`. */
export async function rawHttps(hub: Hub, request: string | Buffer, ms = 3000): Promise<string> {
  const socket = await tlsConnect(hub.ports.https);
  socket.on("error", () => {});
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.write(request);
  await closedWithin(socket, ms);
  socket.destroy();
  return Buffer.concat(chunks).toString("latin1");
}

/** Resolves "timeout" after `ms`, for racing against an event; it does not keep the test process alive. */
export const timeout = (ms: number) =>
  new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());

// ---- MQTT ----

/** An MQTT 3.1.1 client that sends whatever packets (or bytes) the test builds and records what comes back. */
export class RawMqtt {
  readonly packets: mqtt.Packet[] = [];
  readonly closed: Promise<void>;
  private readonly listeners = new Set<() => void>();

  /** `closed` defaults to the stream's close; a WebSocket's stream only ends, so pass the socket's own close. */
  constructor(
    readonly stream: Duplex,
    closed?: Promise<void>,
  ) {
    const parser = mqtt.parser({ protocolVersion: 4 });
    parser.on("packet", (packet: mqtt.Packet) => {
      this.packets.push(packet);
      for (const listener of this.listeners) listener();
    });
    parser.on("error", () => stream.destroy());
    stream.on("data", (chunk: Buffer) => parser.parse(chunk));
    stream.on("error", () => {});
    this.closed = closed ?? new Promise((resolve) => stream.once("close", () => resolve()));
  }

  send(packet: mqtt.Packet): void {
    this.stream.write(mqtt.generate(packet));
  }

  /** The first packet of kind `cmd` (taken off the list), waiting for it up to `ms`. */
  next<P extends mqtt.Packet = mqtt.Packet>(cmd: mqtt.PacketCmd, ms = 5000): Promise<P> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.packets.findIndex((packet) => packet.cmd === cmd);
        if (at < 0) return false;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve(this.packets.splice(at, 1)[0] as P);
        return true;
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no ${cmd} within ${ms} ms (got ${this.packets.map((p) => p.cmd).join(", ") || "nothing"})`));
      }, ms).unref();
      if (!check()) this.listeners.add(check);
    });
  }

  end(): void {
    this.stream.destroy();
  }
}

export function connectPacket(hub: Hub, clientId: string, password: string, keepalive = 60): mqtt.IConnectPacket {
  return {
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: false,
    clientId,
    keepalive,
    username: `${hub.hostName}/${clientId}/?${API}`,
    password: Buffer.from(password),
  };
}

/**
 * Two connected in-memory streams, as aedes' tests use: what one side writes the other reads. Like a socket, when one
 * side is destroyed the other reads an end, after what was already sent.
 */
export function memoryPair(): [client: Duplex, server: Duplex] {
  const [client, server] = duplexPair();
  client.once("close", () => server.push(null));
  server.once("close", () => client.push(null));
  return [client, server];
}

/** A client on the hub's MQTT edge itself (`MqttEdge.accept`), with no socket in between. */
export function mqttInMemory(hub: Hub): RawMqtt {
  const [client, server] = memoryPair();
  hub.mqtt.accept(server, "memory");
  // The hub ends its side when it drops the client; this side then ends, and closes only once destroyed.
  const closed = new Promise<void>((resolve) => (client.once("end", resolve), client.once("close", resolve)));
  return new RawMqtt(client, closed);
}

/** A connection to the hub's AMQP edge itself (`AmqpEdge.acceptStream`), with no socket in between. */
export function amqpInMemory(hub: Hub): { stream: Duplex; closed: Promise<void> } {
  const [client, server] = memoryPair();
  hub.amqp.acceptStream(server, "amqp memory");
  client.on("error", () => {});
  client.resume(); // what the hub answers is not read here; it must not hold the stream up either
  const closed = new Promise<void>((resolve) => (client.once("end", resolve), client.once("close", resolve)));
  return { stream: client, closed };
}

export type MqttTransport = "tls" | "websocket" | "memory";

async function mqttOver(hub: Hub, over: MqttTransport): Promise<{ client: RawMqtt; ws?: WebSocket }> {
  if (over === "memory") return { client: mqttInMemory(hub) };
  if (over === "tls") return { client: await mqttOverTls(hub) };
  return mqttOverWebSocket(hub);
}

export async function mqttOverTls(hub: Hub): Promise<RawMqtt> {
  return new RawMqtt(await tlsConnect(hub.ports.mqtt));
}

export function webSocket(hub: Hub, path = "/$iothub/websocket", protocol = "mqtt"): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://${SERVER_NAME}:${hub.ports.https}${path}`, protocol, { family: 4 });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

export async function mqttOverWebSocket(hub: Hub): Promise<{ client: RawMqtt; ws: WebSocket }> {
  const ws = await webSocket(hub);
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  return { client: new RawMqtt(createWebSocketStream(ws), closed), ws };
}

/** CONNECTs as `clientId` ("dev" or "dev/mod") with `password`; resolves with the client and the CONNACK code. */
export async function connectAs(
  hub: Hub,
  clientId: string,
  password: string,
  over: MqttTransport = "tls",
): Promise<{ client: RawMqtt; returnCode: number | undefined; ws?: WebSocket }> {
  const { client, ws } = await mqttOver(hub, over);
  client.send(connectPacket(hub, clientId, password));
  const connack = await client.next<mqtt.IConnackPacket>("connack");
  return { client, returnCode: connack.returnCode, ws };
}

/**
 * Checks that a valid service client (REST) and a valid device (MQTT CONNECT) are still served; in memory, that a
 * valid device is: what a test sent in memory reached the MQTT edge only.
 */
export async function expectStillServed({ hub, probe }: ProtocolHub, over: MqttTransport = "tls"): Promise<void> {
  if (over !== "memory") {
    const response = await rest(hub, "GET", `/devices/${probe.deviceId}`, { token: ownerToken(hub) });
    expect(response.status).toBe(200);
  }
  const { client, returnCode } = await connectAs(hub, probe.deviceId, probe.token(), over);
  expect(returnCode).toBe(0);
  client.end();
}
