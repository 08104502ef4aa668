/**
 * @summary Script start-up: the same tutorial script (CreateModule.ts) started each way a reader might, and inside one
 * process what loading the SDK, our own code and the REST calls each take.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { TSX_LOADER } from "./hub-process";
import { median, round, wallTime } from "./measure";

const ROOT = path.resolve(__dirname, "../..");

interface Probe {
  sdkLoadMs: number;
  ownCodeMs: number;
  networkMs: number;
}

/** `clientEnv`: the CA and the port redirect that let a child process reach the bench's hub. */
export function measureStartup(connectionString: string, clientEnv: NodeJS.ProcessEnv, runs: number) {
  // Inside the project, so that the empty scripts are CommonJS like ours and the compiled ones find node_modules.
  const work = path.join(ROOT, "test", "bench", ".tmp");
  const build = path.join(work, "build");
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  // The same script compiled to JavaScript, next to node_modules so that require() finds the SDKs.
  execFileSync(process.execPath, [
    require.resolve("typescript/bin/tsc"),
    ...["--outDir", build, "--module", "commonjs", "--target", "ES2022", "--esModuleInterop", "--skipLibCheck"],
    ...["--rootDir", ROOT, path.join(ROOT, "CreateModule.ts")],
  ]);
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...clientEnv,
    IOTHUB_CONNECTION_STRING: connectionString,
  };
  const noopJs = path.join(work, "noop.js");
  fs.writeFileSync(noopJs, "");
  const tsxBin = path.join(ROOT, "node_modules", ".bin", "tsx");
  const script = path.join(ROOT, "CreateModule.ts");
  const compiled = path.join(build, "CreateModule.js");
  const node = process.execPath;

  // Each way of starting the same script; the differences between neighbours are what each layer adds.
  const npxTsxMs = wallTime("npx", ["tsx", script], env, ROOT, runs);
  const tsxMs = wallTime(tsxBin, [script], env, ROOT, runs);
  const nodeImportTsxMs = wallTime(node, ["--import", TSX_LOADER, script], env, ROOT, runs);
  // tsx's CommonJS hook alone: enough for these CommonJS scripts, and no ESM loader thread to start.
  const nodeRequireTsxMs = wallTime(node, ["--require", require.resolve("tsx/cjs"), script], env, ROOT, runs);
  const nodeMs = wallTime(node, [compiled], env, ROOT, runs);
  const nodeBootMs = wallTime(node, [noopJs], env, ROOT, runs);

  // Inside one process: what loading the SDKs, our own code and the network calls each take.
  const probe = `
    const { performance } = require("node:perf_hooks");
    const t0 = performance.now();
    const { Registry } = require("azure-iothub");
    const t1 = performance.now();
    const config = require(${JSON.stringify(path.join(build, "config.js"))});
    const script = require(${JSON.stringify(compiled)});
    const settings = config.readServiceConfig();
    config.buildModuleConnectionString(settings.hostName, settings.deviceId, settings.moduleId, "a2V5");
    const t2 = performance.now();
    const registry = Registry.fromConnectionString(settings.connectionString);
    (async () => {
      await registry.create({ deviceId: settings.deviceId }).catch((e) => { if (!script.isAlreadyExists(e)) throw e; });
      await registry.get(settings.deviceId);
      await registry.addModule({ deviceId: settings.deviceId, moduleId: settings.moduleId }).catch((e) => { if (!script.isAlreadyExists(e)) throw e; });
      await registry.getModule(settings.deviceId, settings.moduleId);
      const t3 = performance.now();
      console.log(JSON.stringify({ sdkLoadMs: t1 - t0, ownCodeMs: t2 - t1, networkMs: t3 - t2 }));
    })();`;
  const probes = Array.from(
    { length: runs },
    () => JSON.parse(execFileSync(node, ["-e", probe], { env, cwd: ROOT }).toString()) as Probe,
  );
  fs.rmSync(work, { recursive: true, force: true });
  return {
    npxTsxMs: round(npxTsxMs, 0),
    tsxMs: round(tsxMs, 0),
    nodeImportTsxMs: round(nodeImportTsxMs, 0),
    nodeRequireTsxMs: round(nodeRequireTsxMs, 0),
    nodeMs: round(nodeMs, 0),
    split: {
      npxResolutionMs: round(npxTsxMs - tsxMs, 0),
      tsxExtraProcessMs: round(tsxMs - nodeImportTsxMs, 0),
      tsxEsmLoaderMs: round(nodeImportTsxMs - nodeRequireTsxMs, 0),
      tsxHookAndTransformMs: round(nodeRequireTsxMs - nodeMs, 0),
      nodeBootMs: round(nodeBootMs, 0),
      sdkLoadMs: round(median(probes.map((p) => p.sdkLoadMs)), 1),
      networkMs: round(median(probes.map((p) => p.networkMs)), 1),
    },
    ownCodeMs: round(median(probes.map((p) => p.ownCodeMs)), 1),
  };
}
