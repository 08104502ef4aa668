/**
 * Starts and stops the local IoT hub in-process: TLS material, HTTPS on 443 (REST and MQTT over WebSockets), MQTT
 * over TLS on 8883, on 127.0.0.1 and ::1, around one core and its store. The CLI (cli.ts), the demo and the tests
 * all use startHub().
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { ensureCertificates, loadClientCas, loadNamedClientCas } from "./certs";
import { portMapValue } from "./client-setup";
import { HubCore } from "./core/hub-core";
import type { StoredRecord } from "./core/records";
import { MqttEdge } from "./edges/mqtt/broker";
import { createRestHandler } from "./edges/rest/server";
import { WebSocketEdge } from "./edges/websocket";
import { HealthInfo, isHealthRequest, serveHealth } from "./edges/health";
import { createAdminHandler, isAdminRequest } from "./edges/admin/faults-api";
import { createProvisioningHandler, isProvisioningRequest } from "./edges/dps/rest";
import { Faults } from "./core/faults";
import { PortalEdge } from "./edges/portal/server";
import type { OAuthMode } from "./core/bearer";
import { AmqpEdge } from "./edges/amqp/server";
import { MAX_AMQP_WEBSOCKET_MESSAGE } from "./edges/amqp/limits";
import { eventHubConnectionString } from "./edges/amqp/redirect";
import type { EventLogOptions } from "./store/event-log";
import {
  DEFAULT_TLS_HANDSHAKE_MS,
  LOOPBACK,
  PortError,
  closeServer,
  createHttpsServer,
  createTlsServer,
  listen,
  listenOrFallBack,
} from "./listeners";
import { openStores } from "./stores";
import { ConnectionShedder } from "./fd-pressure";
import type { Store } from "./store/store";

export { PortError };

export interface HubOptions {
  /** State, certificates and the env file; default `.localhub`. */
  dataDir?: string;
  /** Keep identities and twins in memory only (certificates and the env file still go to dataDir). */
  inMemory?: boolean;
  /** A store of the caller's (tests that hold back or fail writes); overrides inMemory. */
  store?: Store<StoredRecord>;
  /** Where log lines go; default none. */
  log?: (line: string) => void;
  /**
   * 0 picks a free port. Without it the hub takes 443, or 8443 where 443 needs privileges it lacks; clients then reach
   * it as localhost:443 through port-redirect.cjs (see `redirects`).
   */
  httpsPort?: number;
  mqttPort?: number;
  /**
   * AMQP over TLS (service clients, Event Hubs-compatible endpoint): 5671 (15671 where that is refused); 0 picks
   * a free port, as does a free mqttPort.
   */
  amqpPort?: number;
  /** Partitions (default 2), retention (default one day) and size limit of the telemetry log. */
  eventLog?: EventLogOptions;
  /** `"basic"`: accept Microsoft Entra ID bearer tokens with IoT Hub's audience that have not expired (core/bearer.ts). */
  oauth?: OAuthMode;
  /** Serve the local portal (edges/portal/) on its own loopback port: 8090 by default, a free one where that is taken. */
  portal?: { port?: number };
  /**
   * Shorter limits for tests that trip them; the defaults are in listeners.ts, edges/mqtt/session.ts and
   * edges/amqp/limits.ts (amqpOpenTimeoutMs: the wait for SASL and OPEN).
   */
  limits?: { tlsHandshakeMs?: number; connectTimeoutMs?: number; amqpOpenTimeoutMs?: number };
  /**
   * The provisioning service's `retry-after`: how long an `assigning` answer tells a device to wait before it polls, in
   * whole seconds. Default 1 (Azure usually says 3); 0, which the SDKs read as "poll now", suits tests.
   */
  provisioning?: { retryAfterSeconds?: number };
}

export interface Hub {
  hostName: string;
  /** iothubowner connection string. */
  connectionString: string;
  /** The provisioning service's: its provisioningserviceowner connection string and ID scope (host: hostName). */
  provisioning: { connectionString: string; idScope: string };
  caPath: string;
  envPath: string;
  dataDir: string;
  core: HubCore;
  mqtt: MqttEdge;
  /** The local portal, when asked for: its URL carries the token. */
  portal?: { url: string; port: number };
  /** AMQP for the service side and the Event Hubs-compatible endpoint. */
  amqp: AmqpEdge;
  /** The Event Hubs-compatible connection string (iothubowner, or the named policy). */
  eventHubConnectionString(policyName?: string): string;
  /** Faults on demand (the admin API under /$localhub/faults and the portal set them). */
  faults: Faults;
  listening: string[];
  /** The ports actually bound (differ from the options when those were 0). */
  ports: { https: number; mqtt: number; amqp: number };
  /** Standard port → the port the hub bound instead (443 → 8443, say); empty when clients need no redirect. */
  redirects: Record<number, number>;
  stop(): Promise<void>;
}

const HOST_NAME = "localhost";
const STANDARD_PORTS = { https: 443, mqtt: 8883, amqp: 5671 };
/** Where HTTPS goes when 443 needs privileges: a normal Linux user cannot bind ports below 1024. */
export const UNPRIVILEGED_HTTPS_PORT = 8443;

/** Attempts at binding free ports (0) before a port taken in the meantime is reported. */
const FREE_PORT_ATTEMPTS = 5;

export async function startHub(options: HubOptions = {}): Promise<Hub> {
  const freePorts = options.httpsPort === 0 || options.mqttPort === 0 || options.amqpPort === 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHubOnce(options);
    } catch (err) {
      // A free port the system picked on 127.0.0.1 may be in use on ::1 (a client's own port, say): pick again. The
      // state is opened only once every port is bound, so a failed attempt has touched nothing.
      const taken = err instanceof PortError && err.code === "EADDRINUSE";
      if (!(freePorts && taken && attempt < FREE_PORT_ATTEMPTS)) throw err;
    }
  }
}

async function startHubOnce(options: HubOptions): Promise<Hub> {
  const startedAtMs = Date.now();
  const dataDir = path.resolve(options.dataDir ?? ".localhub");
  const log = options.log ?? (() => {});
  const handshakeMs = options.limits?.tlsHandshakeMs ?? DEFAULT_TLS_HANDSHAKE_MS;
  const ports = { https: options.httpsPort ?? STANDARD_PORTS.https, mqtt: options.mqttPort ?? STANDARD_PORTS.mqtt };
  const retryAfter = options.provisioning?.retryAfterSeconds;
  if (retryAfter !== undefined && !(Number.isInteger(retryAfter) && retryAfter >= 0)) {
    throw new Error(`provisioning.retryAfterSeconds must be a whole number of seconds, 0 or more: ${retryAfter}`);
  }
  const tlsFiles = await ensureCertificates(dataDir);

  // Bind the ports before touching the state: a second hub on the same directory fails here, harmlessly.
  let edges:
    | {
        rest: ReturnType<typeof createRestHandler>;
        admin: ReturnType<typeof createAdminHandler>;
        dps: ReturnType<typeof createProvisioningHandler>;
        mqtt: MqttEdge;
        websocket: WebSocketEdge;
      }
    | undefined;
  const servers: net.Server[] = [];
  const listening: string[] = [];
  const shedder = new ConnectionShedder(log);
  const amqp = new AmqpEdge(HOST_NAME, log, { openTimeoutMs: options.limits?.amqpOpenTimeoutMs });
  /** Set once the hub is ready: until then /health answers 503. */
  let health: HealthInfo | undefined;
  const portal = options.portal ? new PortalEdge(log, () => health) : undefined;
  // X.509 devices authenticate by client certificate on 8883 and, for MQTT over WebSockets, on 443.
  const clientCas = loadClientCas(dataDir);
  try {
    for (const address of LOOPBACK) {
      const httpsServer = createHttpsServer(
        tlsFiles,
        handshakeMs,
        log,
        (req, res) => {
          if (isHealthRequest(req)) serveHealth(req, res, health);
          else if (edges)
            void (isAdminRequest(req) ? edges.admin : isProvisioningRequest(req) ? edges.dps : edges.rest)(req, res);
          else res.writeHead(503).end();
        },
        clientCas,
      );
      httpsServer.on("upgrade", (req, socket, head: Buffer) => {
        if (edges) edges.websocket.upgrade(req, socket, head);
        else socket.destroy();
      });
      const mqttServer = createTlsServer(
        tlsFiles,
        handshakeMs,
        log,
        (socket) => {
          if (edges) edges.mqtt.accept(socket, "mqtts");
          else socket.destroy();
        },
        clientCas,
      );
      servers.push(httpsServer, mqttServer);
      const host = address.includes(":") ? `[${address}]` : address;
      // Port 0 picks a free port on the first address; the second address uses the same one.
      // Without a port asked for, 443 falls back to 8443 where it needs privileges the hub lacks.
      const fallBack = options.httpsPort === undefined && ports.https === STANDARD_PORTS.https;
      const https = await listenOrFallBack(
        httpsServer,
        ports.https,
        address,
        fallBack ? UNPRIVILEGED_HTTPS_PORT : undefined,
      );
      ports.https = https.port;
      if (https.bound) {
        ports.https = (httpsServer.address() as net.AddressInfo).port;
        listening.push(`https://${host}:${ports.https}`);
      }
      if (await listen(mqttServer, ports.mqtt, address)) {
        ports.mqtt = (mqttServer.address() as net.AddressInfo).port;
        listening.push(`mqtts://${host}:${ports.mqtt}`);
      }
    }
    // A caller that asks for a free MQTT port (tests, several hubs at once) gets a free AMQP port too.
    await amqp.listen({
      tls: tlsFiles,
      port: options.amqpPort ?? (options.mqttPort === 0 ? 0 : undefined),
      clientCas,
    });
    listening.push(...amqp.listening);
    if (portal) {
      await portal.listen(options.portal?.port);
      listening.push(...portal.listening);
    }
    for (const server of servers) shedder.watch(server);
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    await amqp.stop();
    await portal?.stop();
    throw err;
  }

  let core: HubCore;
  try {
    const stores = await openStores({
      dataDir,
      inMemory: options.inMemory,
      state: options.store,
      eventLog: options.eventLog,
      log,
    });
    core = await HubCore.open(HOST_NAME, stores, log);
  } catch (err) {
    await Promise.all(servers.map(closeServer));
    await amqp.stop();
    await portal?.stop();
    throw err;
  }
  core.provisioning.useClientCas(loadNamedClientCas(dataDir));
  if (retryAfter !== undefined) core.provisioning.retryAfterSeconds = retryAfter;
  amqp.serve({ core, log });
  const faults = new Faults(log);
  const mqtt = new MqttEdge(core, log, { connectTimeoutMs: options.limits?.connectTimeoutMs }, faults);
  mqtt.onEstablished = (session) => shedder.established(session.stream);
  const websocket = new WebSocketEdge(
    mqtt,
    log,
    (ws, remote, tls) => amqp.acceptWebSocket(ws, remote, tls),
    MAX_AMQP_WEBSOCKET_MESSAGE,
  );
  edges = {
    rest: createRestHandler(core, log, { oauth: options.oauth }),
    admin: createAdminHandler(core, faults, log),
    dps: createProvisioningHandler(core, log, { oauth: options.oauth }),
    mqtt,
    websocket,
  };
  const eventHubs = (policyName = "iothubowner"): string => {
    const policy = core.policies.find(policyName);
    if (!policy) throw new Error(`no policy ${policyName}`);
    return eventHubConnectionString(amqp.endpointHost, amqp.entityName, policy);
  };

  const owner = core.policies.find("iothubowner")!;
  const connectionString = `HostName=${HOST_NAME};SharedAccessKeyName=iothubowner;SharedAccessKey=${owner.primaryKey}`;
  const envPath = path.join(dataDir, "env");
  const redirects: Record<number, number> = {};
  if (ports.https !== STANDARD_PORTS.https) redirects[STANDARD_PORTS.https] = ports.https;
  if (ports.mqtt !== STANDARD_PORTS.mqtt) redirects[STANDARD_PORTS.mqtt] = ports.mqtt;
  if (amqp.port !== STANDARD_PORTS.amqp) redirects[STANDARD_PORTS.amqp] = amqp.port;
  writeEnvFile(envPath, [
    `IOTHUB_CONNECTION_STRING="${connectionString}"`,
    `EVENTHUB_CONNECTION_STRING="${eventHubs()}"`,
    `NODE_EXTRA_CA_CERTS=${tlsFiles.caPath}`,
    // The provisioning service shares the hub's host name and ports, as the SDKs need (they take no port).
    `PROVISIONING_CONNECTION_STRING="${core.provisioning.connectionString}"`,
    `PROVISIONING_HOST=${HOST_NAME}`,
    `PROVISIONING_ID_SCOPE=${core.provisioning.idScope}`,
    ...(Object.keys(redirects).length ? [`LOCALHUB_PORT_MAP=${portMapValue(redirects)}`] : []),
  ]);

  portal?.serve({ core, faults });
  health = {
    hostName: HOST_NAME,
    listening,
    stateDirectory: dataDir,
    inMemory: Boolean(options.inMemory || options.store),
    startedAtMs,
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      mqtt.closeAll();
      websocket.closeAll();
      await portal?.stop();
      await Promise.all(servers.map(closeServer));
      await amqp.stop();
      await core.close();
    })());

  return {
    hostName: HOST_NAME,
    connectionString,
    provisioning: { connectionString: core.provisioning.connectionString, idScope: core.provisioning.idScope },
    caPath: tlsFiles.caPath,
    envPath,
    dataDir,
    core,
    mqtt,
    amqp,
    eventHubConnectionString: eventHubs,
    faults,
    portal: portal && { url: portal.url, port: portal.port },
    listening,
    ports: { ...ports, amqp: amqp.port },
    redirects,
    stop,
  };
}

/** Written whole, then renamed: a reader never sees half a file. Keys inside: readable by its owner only. */
function writeEnvFile(envPath: string, lines: string[]): void {
  const tmp = `${envPath}.tmp`;
  fs.writeFileSync(tmp, lines.join("\n") + "\n", { mode: 0o600 });
  fs.renameSync(tmp, envPath);
}
