/**
 * The README's commands on the machine's own ports: `npm run demo` and `npm run hub` on what this machine offers the
 * user running the tests (443, or 8443 and the redirect for a normal Linux user), a port that is taken, and, when the
 * tests run as root, a normal Linux user who cannot bind 443. The only test file that binds those ports: it runs alone
 * there.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { copyTestCertificates, tempDir } from "../helpers/hub";
import { spawnHubCli } from "../helpers/hub-process";
import { NODE_WITH_TSX, ROOT } from "../helpers/paths";
import { StartOptions, runProcess } from "../helpers/processes";
import { PORT_REDIRECT_PATH as PORT_REDIRECT, startHub } from "../localhub";

function runDemo(options: StartOptions = {}) {
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  return runProcess(node, [...nodeArgs, path.join(ROOT, "test/demo.ts")], {
    env: process.env,
    label: "npm run demo",
    timeoutMs: 55_000,
    ...options,
  });
}

/** A hub on the standard ports, in-process, as `npm run hub` would run it. */
async function startStandardHub() {
  const dataDir = tempDir();
  copyTestCertificates(dataDir);
  return startHub({ dataDir, inMemory: true });
}

/** Whether this process may bind `port` here; the answer for 443 is what tells a normal Linux user from root. */
function mayBind(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => (err.code === "EACCES" ? resolve(false) : reject(err)));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The HTTPS port the hub binds here by default, and the redirect clients then need (8883 and 5671 need none). */
let offered: { https: number; portMap: string | undefined };
beforeAll(async () => {
  offered = (await mayBind(443)) ? { https: 443, portMap: undefined } : { https: 8443, portMap: "443=8443" };
});

it("npm run demo plays every step of the tutorial and ends with the patch received", async () => {
  const { code, output } = await runDemo();
  expect(code).toBe(0);
  const steps = output.split("\n").filter((line) => line.startsWith("== Step"));
  expect(steps).toHaveLength(5);
  // The receiver and the update script run at once, as in two terminals, so their lines interleave: read the receiver's.
  const receiverLines = output
    .split("\n")
    .filter((line) => /^\s+receiver \|/.test(line))
    .join("\n");
  expect(receiverLines).toMatch(
    /receiver \| Twin desired properties patch received:\n\s+receiver \| \{\n\s+receiver \|\s+"telemetryInterval": 122,/,
  );
  expect(output).toMatch(/Done: the whole tutorial ran offline in [\d.]+ s\./);
  if (offered.portMap) expect(output).toContain("Port 443 needs privileges here");
  else expect(output).not.toContain("Port 443 needs privileges here");
}, 60_000);

it("npm run demo says which port is taken when a hub already runs, and exits 1", async () => {
  const hub = await startStandardHub();
  try {
    const { code, output } = await runDemo();
    expect(code).toBe(1);
    expect(output).toMatch(new RegExp(`^Error: Cannot listen on port ${offered.https}: it is already in use .*$`, "m"));
    expect(output).not.toMatch(/\n\s+at /);
  } finally {
    await hub.stop();
  }
}, 60_000);

it("npm run hub writes DIR/env before it says ready, listens on the offered ports, and exits 0 on SIGTERM", async () => {
  const dataDir = tempDir();
  const cli = spawnHubCli(dataDir, []);
  try {
    await cli.ready();
    const lines = fs.readFileSync(path.join(dataDir, "env"), "utf8").trimEnd().split("\n");
    expect(lines).toEqual([
      expect.stringMatching(
        /^IOTHUB_CONNECTION_STRING="HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]{44}"$/,
      ),
      expect.stringMatching(
        /^EVENTHUB_CONNECTION_STRING="Endpoint=sb:\/\/localhost\/;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/=]{44};EntityPath=localhost"$/,
      ),
      `NODE_EXTRA_CA_CERTS=${path.join(dataDir, "ca.pem")}`,
      expect.stringMatching(
        /^PROVISIONING_CONNECTION_STRING="HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=[A-Za-z0-9+/=]{44}"$/,
      ),
      "PROVISIONING_HOST=localhost",
      expect.stringMatching(/^PROVISIONING_ID_SCOPE=0ne[0-9A-F]{8}$/),
      ...(offered.portMap ? [`LOCALHUB_PORT_MAP=${offered.portMap}`] : []),
    ]);
    expect(cli.output).toContain(`export NODE_EXTRA_CA_CERTS='${path.join(dataDir, "ca.pem")}'`);
    expect(cli.output).toContain(`cp '${path.join(dataDir, "env")}' .env`);
    if (offered.portMap) {
      expect(cli.output).toContain(
        `export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"'--require "${PORT_REDIRECT}"'`,
      );
      expect(cli.output).toContain(`export LOCALHUB_PORT_MAP=${offered.portMap}`);
    } else {
      expect(cli.output).not.toContain("NODE_OPTIONS");
      expect(cli.output).not.toContain("LOCALHUB_PORT_MAP");
    }
    expect(cli.output).toContain(`listening on https://127.0.0.1:${offered.https}, mqtts://127.0.0.1:8883`);
    expect(cli.output).toContain("amqps://127.0.0.1:5671");
    // The key is in the env file, not on the screen.
    expect(cli.output).not.toContain(/SharedAccessKey=([^"]+)"/.exec(lines[0])![1]);
    cli.child.kill("SIGTERM");
    expect(await cli.exited).toBe(0);
  } finally {
    await cli.stop();
  }
});

it("npm run hub says which port is taken and how to fix it, instead of crashing", async () => {
  const hub = await startStandardHub();
  try {
    const second = spawnHubCli(tempDir(), []);
    try {
      expect(await second.exited).toBe(1);
      const lines = second.output.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^Error: Cannot listen on port ${offered.https}: it is already in use .* Stop it and try again\\.$`),
      );
    } finally {
      await second.stop();
    }
  } finally {
    await hub.stop();
  }
});

// On Linux a normal user may not bind ports below 1024 (unless net.ipv4.ip_unprivileged_port_start allows it). Run as
// root, the tests above see 443; these show what a normal user sees, as the user nobody.
const asRoot = process.getuid?.() === 0;
const lowPortsAllowed =
  process.platform !== "linux" ||
  Number(fs.readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8")) <= 443;
const NOBODY = { uid: 65534, gid: 65534 };

(asRoot && !lowPortsAllowed ? describe : describe.skip)("as a normal Linux user, with nothing configured", () => {
  it("npm run hub serves on 8443 and prints the lines that let the unchanged scripts reach it as localhost:443", async () => {
    const dataDir = tempDir();
    copyTestCertificates(dataDir);
    // The folder and its certificates belong to the normal user, as a clone of theirs would.
    for (const name of ["", ...fs.readdirSync(dataDir)]) fs.chownSync(path.join(dataDir, name), NOBODY.uid, NOBODY.gid);
    const cli = spawnHubCli(dataDir, ["--in-memory"], { ...NOBODY, env: { PATH: process.env.PATH, HOME: dataDir } });
    try {
      await cli.ready();
      expect(cli.output).toMatch(/listening on https:\/\/127\.0\.0\.1:8443, mqtts:\/\/127\.0\.0\.1:8883/);
      expect(cli.output).toContain(
        `export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"'--require "${PORT_REDIRECT}"'`,
      );
      expect(cli.output).toContain("export LOCALHUB_PORT_MAP=443=8443");
      // The manual path: paste the printed lines into bash, copy the env file, run the tutorial's first script.
      const pasted = cli.output
        .split("\n")
        .filter((line) => /^\s+(export|cp) /.test(line))
        .map((line) => line.trim());
      const work = tempDir("reader-");
      const { code, stdout, stderr } = await runBash(
        [...pasted, [...NODE_WITH_TSX, path.join(ROOT, "CreateModule.ts")].map(shellQuoted).join(" ")],
        work,
      );
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).toMatch(
        /^MODULE_CONNECTION_STRING="HostName=localhost;DeviceId=myFirstDevice;ModuleId=myFirstModule;/m,
      );
    } finally {
      await cli.stop();
    }
  });

  it("npm run demo shows the patch arrive", async () => {
    const home = tempDir();
    fs.chmodSync(home, 0o777);
    const { code, output } = await runDemo({ ...NOBODY, env: { PATH: process.env.PATH, HOME: home } });
    expect(output).toContain("Port 443 needs privileges here");
    expect(output).toMatch(/receiver \| Twin desired properties patch received:/);
    expect(code).toBe(0);
  }, 60_000);
});

/** `word` as one word for bash, whatever it holds (a clone's path may have spaces). */
function shellQuoted(word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`;
}

/** Runs lines in bash in `cwd`, with only PATH and HOME from this process, as a reader's fresh terminal. */
function runBash(lines: string[], cwd: string) {
  return runProcess("bash", ["-c", lines.join("\n")], { cwd, env: { PATH: process.env.PATH, HOME: cwd } });
}
