/**
 * port-redirect.cjs: a client that dials localhost:443 (or 8883, 5671) reaches whichever port the map names, with the
 * TLS check still made against localhost; every other connection goes where it was going.
 */
import * as dns from "node:dns";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { EventHubConsumerClient } from "@azure/event-hubs";
import { create_container, type EventContext } from "rhea";
import { setPortMap } from "../localhub/port-redirect.cjs";
import { redirectEnv } from "../localhub/client-setup";
import { ensureCertificates } from "../localhub/certs";
import { tempDir } from "../helpers/hub";
import { ROOT, TEST_TLS_DIR } from "../helpers/paths";
import { runProcess } from "../helpers/processes";

const REDIRECT = path.join(ROOT, "test/localhub/port-redirect.cjs");

/** A TLS server on an ephemeral loopback port that answers with its name and remembers the server names it saw. */
interface NamedServer {
  name: string;
  port: number;
  serverNames: (string | false | null)[];
  server: net.Server;
}

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
let key: string;
let cert: string;
let caPath: string;

/** Closes, at the end, every server and whatever connections a client left open on it. */
function track(server: net.Server): void {
  servers.push(server);
  server.on(server instanceof tls.Server ? "secureConnection" : "connection", (socket: net.Socket) =>
    sockets.push(socket),
  );
}

async function listen(server: net.Server, host = "127.0.0.1"): Promise<number> {
  track(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

/** The host name each AMQP server's first client named in its AMQP open frame, by server port. */
const amqpOpened = new Map<number, Promise<string | undefined>>();

/** An AMQP 1.0 server over TLS (rhea) that accepts anyone and never answers a request. */
async function amqpServer(): Promise<number> {
  const container = create_container();
  (container.sasl_server_mechanisms as { enable_anonymous(): void }).enable_anonymous();
  const opened = new Promise<string | undefined>((resolve) =>
    container.once("connection_open", (context: EventContext) => resolve(context.connection.hostname)),
  );
  const server = container.listen({ port: 0, host: "127.0.0.1", transport: "tls", key, cert });
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  track(server);
  amqpOpened.set(port, opened);
  return port;
}

async function httpsServer(name: string, host?: string): Promise<NamedServer> {
  const serverNames: (string | false | null)[] = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    serverNames.push((req.socket as tls.TLSSocket).servername);
    res.end(name);
  });
  return { name, port: await listen(server, host), serverNames, server };
}

async function tlsServer(name: string): Promise<NamedServer> {
  const serverNames: (string | false | null)[] = [];
  const server = tls.createServer({ key, cert }, (socket) => {
    serverNames.push(socket.servername);
    socket.end(name);
  });
  return { name, port: await listen(server), serverNames, server };
}

function httpsGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

/** Reads what the server at the far end of a connection says, then closes. */
function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("end", () => (socket.end(), resolve(text)));
    socket.on("error", reject);
  });
}

/** Runs node with `args` in its own process group, which is killed when it ends or takes too long. */
async function run(args: string[], env: NodeJS.ProcessEnv, cwd?: string) {
  const { code, stdout, stderr } = await runProcess(process.execPath, args, {
    env: { PATH: process.env.PATH, ...env },
    cwd,
  });
  return { code, stdout, stderr };
}

/** A program a reader might run: fetches https://localhost/ (port 443) and prints the answer. */
const FETCH_LOCALHOST_443 =
  "require('https').get('https://localhost/', (res) => res.pipe(process.stdout))" +
  ".on('error', (err) => { console.error(err.message); process.exit(3); });";

beforeAll(async () => {
  ({ key, cert, caPath } = await ensureCertificates(TEST_TLS_DIR));
});

afterEach(() => setPortMap({}));

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

describe("in the process that loads it", () => {
  test("https.request to localhost:443 reaches the mapped port, and the certificate is checked for localhost", async () => {
    const hub = await httpsServer("hub");
    setPortMap({ 443: hub.port });
    expect(await httpsGet("https://localhost/twins/x")).toBe("hub");
    expect(await httpsGet("https://127.0.0.1:443/")).toBe("hub");
    expect(hub.serverNames).toEqual(["localhost", false]); // no SNI for an IP address, as without the redirect
  });

  test("tls.connect to localhost:8883 reaches the mapped port with the server name localhost", async () => {
    const mqtt = await tlsServer("mqtt");
    setPortMap({ 8883: mqtt.port });
    const socket = tls.connect({ host: "localhost", port: 8883, servername: "localhost" });
    expect(await readAll(socket)).toBe("mqtt");
    expect(socket.authorized).toBe(true);
    expect(mqtt.serverNames).toEqual(["localhost"]);
  });

  test("connections to ::1 (https://[::1]/, net.connect) are redirected too", async () => {
    const hub = await httpsServer("hub", "::1").catch(() => undefined);
    if (hub === undefined) return; // this machine has no IPv6 loopback: nothing to connect to
    const plain = net.createServer((socket) => socket.end("plain"));
    const port = await listen(plain, "::1");
    setPortMap({ 443: hub.port, 5671: port });
    expect(await httpsGet("https://[::1]/")).toBe("hub");
    expect(await readAll(net.connect(5671, "::1"))).toBe("plain");
  });

  test("an unmapped port on localhost is left alone", async () => {
    const hub = await httpsServer("hub");
    const other = await httpsServer("other");
    setPortMap({ 443: hub.port });
    expect(await httpsGet(`https://localhost:${other.port}/`)).toBe("other");
  });

  test("a host that is not loopback by name is left alone, even on a mapped port", async () => {
    const hub = await tlsServer("hub");
    const other = await tlsServer("other");
    setPortMap({ [other.port]: hub.port });
    // A name that resolves to 127.0.0.1 only through this lookup: the map must not apply to it.
    const lookup: net.LookupFunction = (_host, options, callback) =>
      options.all
        ? (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, [
            { address: "127.0.0.1", family: 4 },
          ])
        : callback(null, "127.0.0.1", 4);
    const socket = tls.connect({ host: "hub.example", port: other.port, lookup, servername: "localhost" });
    expect(await readAll(socket)).toBe("other");
  });

  test("a Unix socket path is left alone", async () => {
    const hub = await tlsServer("hub");
    const socketPath = path.join(tempDir("redirect-"), "ipc.sock");
    const ipc = net.createServer((socket) => socket.end("ipc"));
    track(ipc);
    await new Promise<void>((resolve) => ipc.listen(socketPath, resolve));
    setPortMap({ 443: hub.port });
    expect(await readAll(net.connect({ path: socketPath, port: 443 } as net.NetConnectOpts))).toBe("ipc");
  });

  test("rhea (AMQP over TLS) to localhost:5671 reaches the mapped port, the certificate checked for localhost", async () => {
    const port = await amqpServer();
    setPortMap({ 5671: port });
    const connection = create_container().connect({ host: "localhost", port: 5671, transport: "tls" });
    // rhea opens only once TLS has verified the certificate (for localhost) and our server has answered.
    await new Promise((resolve, reject) => {
      connection.once("connection_open", resolve);
      connection.once("disconnected", (context: EventContext) =>
        reject(new Error(`rhea did not connect: ${String(context.error)}`)),
      );
    });
    connection.close();
  });

  test("@azure/event-hubs connects to localhost:5671 through the map", async () => {
    const port = await amqpServer();
    setPortMap({ 5671: port });
    const client = new EventHubConsumerClient(
      "$Default",
      "Endpoint=sb://localhost/;SharedAccessKeyName=service;SharedAccessKey=c2VjcmV0;EntityPath=events",
    );
    // Our server never answers the request: it serves only to make the client connect, and is then abandoned.
    const abort = new AbortController();
    const properties = client.getEventHubProperties({ abortSignal: abort.signal }).catch(() => undefined);
    expect(await amqpOpened.get(port)).toBe("localhost");
    abort.abort();
    await properties;
    await client.close();
  });

  test("setPortMap refuses what is not a port, and keeps the map it had", async () => {
    const hub = await httpsServer("hub");
    setPortMap({ 443: hub.port });
    expect(() => setPortMap({ 443: 70000 })).toThrow('"443=70000" is not a pair of ports (1-65535)');
    expect(() => setPortMap({ 443: Number.NaN })).toThrow("is not a pair of ports");
    expect(await httpsGet("https://localhost/")).toBe("hub");
  });
});

describe("in a child process, through NODE_OPTIONS", () => {
  test("node --require from a path with spaces, with LOCALHUB_PORT_MAP, reaches the server", async () => {
    const hub = await httpsServer("hub");
    const dir = path.join(tempDir("redirect-"), "a folder with spaces");
    fs.mkdirSync(dir);
    fs.copyFileSync(REDIRECT, path.join(dir, "port-redirect.cjs"));
    const result = await run(["-e", FETCH_LOCALHOST_443], {
      NODE_OPTIONS: `--require "${path.join(dir, "port-redirect.cjs")}"`,
      LOCALHUB_PORT_MAP: `443=${hub.port},8883=1`,
      NODE_EXTRA_CA_CERTS: caPath,
    });
    expect(result).toEqual({ code: 0, stdout: "hub", stderr: "" });
  });

  test("redirectEnv gives a child process what it needs, after the NODE_OPTIONS it already had", async () => {
    const hub = await httpsServer("hub");
    const program = `process.stdout.write(require("http").maxHeaderSize + " ");\n${FETCH_LOCALHOST_443}`;
    const result = await run(["-e", program], {
      ...redirectEnv({ 443: hub.port }, "--max-http-header-size=20000"),
      NODE_EXTRA_CA_CERTS: caPath,
    });
    expect(result).toEqual({ code: 0, stdout: "20000 hub", stderr: "" });
    expect(redirectEnv({})).toEqual({});
  });

  test("a script started with `npx tsx` (tsx starts a second node) reaches the server", async () => {
    const hub = await httpsServer("hub");
    const dir = tempDir("redirect-");
    fs.writeFileSync(path.join(dir, "fetch.ts"), `const url: string = "https://localhost/";\n${FETCH_LOCALHOST_443}\n`);
    // The tsx command itself, on purpose: what matters is that its second node process inherits NODE_OPTIONS.
    const result = await run(
      [require.resolve("tsx/cli"), "fetch.ts"],
      {
        NODE_OPTIONS: `--require "${REDIRECT}"`,
        LOCALHUB_PORT_MAP: `443=${hub.port}`,
        NODE_EXTRA_CA_CERTS: caPath,
      },
      dir,
    );
    expect(result).toEqual({ code: 0, stdout: "hub", stderr: "" });
  });

  test("a bad LOCALHUB_PORT_MAP prints one line, redirects nothing, and the program runs on", async () => {
    const other = await httpsServer("other");
    const hub = await httpsServer("hub");
    const program = FETCH_LOCALHOST_443.replace("https://localhost/", `https://localhost:${other.port}/`);
    const result = await run(["-e", program], {
      NODE_OPTIONS: `--require "${REDIRECT}"`,
      LOCALHUB_PORT_MAP: `${other.port}=${hub.port},443:40000`,
      NODE_EXTRA_CA_CERTS: caPath,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("other");
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      `port-redirect: ignoring LOCALHUB_PORT_MAP="${other.port}=${hub.port},443:40000": "443:40000" is not of the ` +
        "form port=newPort; expected port=newPort pairs separated by commas, e.g. 443=40123,8883=40124. " +
        "Nothing is redirected.",
    ]);
  });
});
