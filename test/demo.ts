/**
 * @summary `npm run demo`: plays the whole tutorial offline against a local hub, as a guided tour. Each script runs as
 * its own process, exactly as a reader would start it with `npx tsx <file>`.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { PORT_REDIRECT_PATH, PortError, redirectEnv, startHub } from "./localhub";

const ROOT = path.resolve(__dirname, "..");
/**
 * What `npx tsx <file>` runs, in one process: tsx's command would start the script in a second node, which a signal
 * to the first does not always reach. tsx's CommonJS hook is all these CommonJS scripts need, and it starts them
 * without the ESM loader's thread.
 */
const NODE_WITH_TSX = [process.execPath, "--require", require.resolve("tsx/cjs")];
const PATCH_TIMEOUT_MS = 15_000;

const started = Date.now();
const children = new Set<ChildProcess>();

function heading(step: string, command: string): void {
  console.log("");
  console.log(`== ${step}`);
  console.log(`   $ ${command}`);
}

/** Starts a tutorial script with the environment a reader has after following the README's offline path. */
function startScript(
  file: string,
  label: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { child: ChildProcess; output: () => string } {
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  const child = spawn(node, [...nodeArgs, path.join(ROOT, file)], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let output = "";
  const show = (chunk: Buffer) => {
    output += chunk.toString();
    for (const line of chunk.toString().replace(/\n$/, "").split("\n")) console.log(`${label.padStart(9)} | ${line}`);
  };
  child.stdout.on("data", show);
  child.stderr.on("data", show);
  return { child, output: () => output };
}

function exitCode(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once("exit", resolve));
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

class StepFailed extends Error {}

export async function main(): Promise<void> {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "iothub-demo-"));
  heading("Step 1: start a local IoT hub (instead of creating one in Azure)", "npm run hub");
  const hub = await startHub({
    dataDir: path.join(workDir, "hub"),
    inMemory: true,
    log: (line) => console.log(`${"hub".padStart(9)} | ${line}`),
  });
  console.log(
    `   Listening on ${hub.listening.join(", ")}; the scripts trust it through NODE_EXTRA_CA_CERTS=${hub.caPath}`,
  );
  if (Object.keys(hub.redirects).length) {
    console.log(`   Port 443 needs privileges here: the scripts reach localhost:443 through ${PORT_REDIRECT_PATH}`);
  }

  // The scripts run in an empty folder: they get their settings from the environment, and a .env of yours is left alone.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: hub.caPath,
    // Where the hub could not take 443 (a normal Linux user), the preload that sends the scripts to its port.
    ...redirectEnv(hub.redirects),
    IOTHUB_CONNECTION_STRING: hub.connectionString,
  };
  delete env.MODULE_CONNECTION_STRING;
  delete env.DEVICE_ID;
  delete env.MODULE_ID;
  let receiver: ReturnType<typeof startScript> | undefined;
  try {
    heading("Step 2: create a device identity and a module identity", "npx tsx CreateModule.ts");
    const create = startScript("CreateModule.ts", "create", env, workDir);
    if ((await exitCode(create.child)) !== 0) throw new StepFailed("CreateModule.ts failed");
    const moduleString = /^MODULE_CONNECTION_STRING="([^"]+)"$/m.exec(create.output())?.[1];
    if (!moduleString) throw new StepFailed("CreateModule.ts printed no module connection string");

    heading(
      "Step 3: get updates on the device side (leave it running)",
      "npx tsx ReceiveModuleTwinDesiredPropertiesPatch.ts",
    );
    receiver = startScript(
      "ReceiveModuleTwinDesiredPropertiesPatch.ts",
      "receiver",
      { ...env, MODULE_CONNECTION_STRING: moduleString },
      workDir,
    );
    const listening = await waitFor(
      () => /Waiting for desired property patches/.test(receiver!.output()) || receiver!.child.exitCode !== null,
      PATCH_TIMEOUT_MS,
    );
    if (!listening || receiver.child.exitCode !== null) throw new StepFailed("the receiver did not start listening");

    heading(
      "Step 4: update the module twin from the service side (in a second terminal)",
      "npx tsx UpdateModuleTwinDesiredProperties.ts",
    );
    const update = startScript("UpdateModuleTwinDesiredProperties.ts", "update", env, workDir);
    if ((await exitCode(update.child)) !== 0) throw new StepFailed("UpdateModuleTwinDesiredProperties.ts failed");
    const patched = await waitFor(
      () => /patch received:\n\{\n\s+"telemetryInterval": 122,/.test(receiver!.output()),
      PATCH_TIMEOUT_MS,
    );
    if (!patched) throw new StepFailed("the receiver did not print the patch with telemetryInterval 122");

    heading("Step 5: stop the device app", "Ctrl-C");
    receiver.child.kill("SIGINT");
    if ((await exitCode(receiver.child)) !== 0) throw new StepFailed("the receiver did not exit cleanly on Ctrl-C");
  } finally {
    for (const child of children) child.kill("SIGKILL");
    await hub.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  console.log("");
  console.log(`Done: the whole tutorial ran offline in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  console.log("Next: `npm run hub` in one terminal and follow the README's offline path to run each step yourself.");
}

if (require.main === module) {
  main().catch((err) => {
    const message =
      err instanceof PortError || err instanceof StepFailed
        ? err.message
        : `the demo failed: ${(err as Error).message}`;
    console.error(`Error: ${message}`);
    process.exit(1);
  });
}
