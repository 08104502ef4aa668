/**
 * Starts and stops the local IoT hub in-process: TLS material, HTTPS on 443 (REST and MQTT over WebSockets),
 * MQTT over TLS on 8883, on 127.0.0.1 and ::1, around one registry and its store. The CLI (cli.ts) and the tests
 * both use startHub().
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { WebSocketServer, createWebSocketStream } from "ws";
import { ensureCertificates } from "./certs";
import { MqttEdge } from "./edges/mqtt/mqtt";
import { Registry, StoredRecord } from "./core/registry";
import { createRestHandler } from "./edges/rest/rest";
import { JournalStore, MemoryStore, Store } from "./store/journal";

export interface HubOptions {
  /** State, certificates and the env file; default `.localhub`. */
  dataDir?: string;
  /** Keep identities and twins in memory only (certificates and the env file still go to dataDir). */
  inMemory?: boolean;
  /** Where log lines go; default none. */
  log?: (line: string) => void;
  httpsPort?: number;
  mqttPort?: number;
}

export interface Hub {
  hostName: string;
  /** iothubowner connection string. */
  connectionString: string;
  caPath: string;
  envPath: string;
  dataDir: string;
  registry: Registry;
  mqtt: MqttEdge;
  listening: string[];
  /** The ports actually bound (differ from the options when those were 0). */
  ports: { https: number; mqtt: number };
  stop(): Promise<void>;
}

/** A port the hub cannot bind, with what to do about it. */
export class PortError extends Error {
  constructor(
    readonly port: number,
    readonly code: string,
  ) {
    super(
      code === "EACCES"
        ? `Cannot listen on port ${port}: ports below 1024 need privileges on Linux. Run as root, or allow it once with ` +
            "`sudo sysctl net.ipv4.ip_unprivileged_port_start=443`."
        : code === "EADDRINUSE"
          ? `Cannot listen on port ${port}: it is already in use (another local hub? \`sudo lsof -i :${port}\` shows who). Stop it and try again.`
          : `Cannot listen on port ${port}: ${code}.`,
    );
  }
}

const HOST_NAME = "localhost";
const LOOPBACK = ["127.0.0.1", "::1"];

function listen(server: net.Server, port: number, address: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      // Some machines have no IPv6 loopback: 127.0.0.1 alone is enough then.
      if (address === "::1" && (err.code === "EADDRNOTAVAIL" || err.code === "EAFNOSUPPORT")) resolve(false);
      else reject(new PortError(port, err.code ?? String(err)));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve(true);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ port, host: address, ipv6Only: address === "::1" });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if (server instanceof https.Server) server.closeAllConnections();
  });
}

export async function startHub(options: HubOptions = {}): Promise<Hub> {
  const dataDir = path.resolve(options.dataDir ?? ".localhub");
  const log = options.log ?? (() => {});
  let httpsPort = options.httpsPort ?? 443;
  let mqttPort = options.mqttPort ?? 8883;
  const tlsFiles = await ensureCertificates(dataDir);

  // Bind the ports before touching the state: a second hub on the same directory fails here, harmlessly.
  let restHandler: ReturnType<typeof createRestHandler> | undefined;
  let mqttEdge: MqttEdge | undefined;
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : false),
  });
  const servers: net.Server[] = [];
  const listening: string[] = [];
  try {
    for (const address of LOOPBACK) {
      const httpsServer = https.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (req, res) => {
        if (restHandler) void restHandler(req, res);
        else res.writeHead(503).end();
      });
      // Like Azure's load balancer, keep idle connections for minutes: the SDK reuses them (keep-alive agent), and a
      // short server timeout races with that reuse ("socket hang up").
      httpsServer.keepAliveTimeout = 240_000;
      httpsServer.on("upgrade", (req, socket, head) => {
        if (!mqttEdge || new URL(req.url ?? "/", "https://localhost").pathname !== "/$iothub/websocket") {
          socket.destroy();
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => mqttEdge?.accept(createWebSocketStream(ws), "websocket"));
      });
      const mqttServer = tls.createServer({ key: tlsFiles.key, cert: tlsFiles.cert }, (socket) => {
        if (mqttEdge) mqttEdge.accept(socket, "mqtts");
        else socket.destroy();
      });
      // A client that does not trust our CA aborts the handshake: that is its error to report, not ours.
      for (const server of [httpsServer, mqttServer]) server.on("tlsClientError", () => {});
      servers.push(httpsServer, mqttServer);
      const host = address.includes(":") ? `[${address}]` : address;
      // Port 0 picks a free port on the first address; the second address uses the same one.
      if (await listen(httpsServer, httpsPort, address)) {
        httpsPort = (httpsServer.address() as net.AddressInfo).port;
        listening.push(`https://${host}:${httpsPort}`);
      }
      if (await listen(mqttServer, mqttPort, address)) {
        mqttPort = (mqttServer.address() as net.AddressInfo).port;
        listening.push(`mqtts://${host}:${mqttPort}`);
      }
    }
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    throw err;
  }

  const store: Store<StoredRecord> = options.inMemory
    ? new MemoryStore<StoredRecord>()
    : await JournalStore.open<StoredRecord>(path.join(dataDir, "state"));
  const registry = new Registry(HOST_NAME, store);
  await store.sync();
  mqttEdge = new MqttEdge(registry, log);
  restHandler = createRestHandler(registry, log);

  const owner = registry.policy("iothubowner")!;
  const connectionString = `HostName=${HOST_NAME};SharedAccessKeyName=iothubowner;SharedAccessKey=${owner.primaryKey}`;
  const envPath = path.join(dataDir, "env");
  const tmp = `${envPath}.tmp`;
  fs.writeFileSync(tmp, `IOTHUB_CONNECTION_STRING="${connectionString}"\nNODE_EXTRA_CA_CERTS=${tlsFiles.caPath}\n`, {
    mode: 0o600,
  });
  fs.renameSync(tmp, envPath);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      mqttEdge?.closeAll();
      for (const client of wss.clients) client.terminate();
      await Promise.all(servers.map(closeServer));
      await store.close();
    })());

  return {
    hostName: HOST_NAME,
    connectionString,
    caPath: tlsFiles.caPath,
    envPath,
    dataDir,
    registry,
    mqtt: mqttEdge,
    listening,
    ports: { https: httpsPort, mqtt: mqttPort },
    stop,
  };
}
