/**
 * A reader's folder: the tutorial's files copied on their own next to only the tutorial's five packages, and the
 * scripts started there with `npx tsx <file>`, exactly as the README tells a reader to.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ChildProcess, spawn } from "node:child_process";
import { ScriptRun, eventually, tempDir } from "./hub";
import { ROOT } from "./paths";

/** What the tutorial asks a reader to install, and nothing else. */
export const TUTORIAL_PACKAGES = ["azure-iothub", "azure-iot-device", "azure-iot-device-mqtt", "dotenv", "tsx"];
export const TUTORIAL_FILES = [
  "CreateModule.ts",
  "UpdateModuleTwinDesiredProperties.ts",
  "ReceiveModuleTwinDesiredPropertiesPatch.ts",
  "config.ts",
];

/**
 * Makes an empty temporary folder holding `files` (copied from the repository) and a node_modules with links to the
 * five packages only, plus node_modules/.bin/tsx so that `npx tsx` finds tsx there and never downloads it. Node follows
 * the links to the packages' real folders, so their own dependencies resolve; a script's own `import` sees only five.
 */
export function readerFolder(files: string[] = TUTORIAL_FILES): string {
  const dir = tempDir("reader-");
  for (const file of files) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file));
  const modules = path.join(dir, "node_modules");
  fs.mkdirSync(path.join(modules, ".bin"), { recursive: true });
  for (const name of TUTORIAL_PACKAGES) {
    // "junction" makes the same link on Windows without administrator rights; POSIX ignores the type.
    fs.symlinkSync(fs.realpathSync(path.join(ROOT, "node_modules", name)), path.join(modules, name), "junction");
  }
  const tsxPackage = fs.readFileSync(path.join(ROOT, "node_modules", "tsx", "package.json"), "utf8");
  const tsxBin = (JSON.parse(tsxPackage) as { bin: string }).bin;
  fs.symlinkSync(path.join("..", "tsx", tsxBin), path.join(modules, ".bin", "tsx"));
  return dir;
}

const running = new Set<ChildProcess>();

/**
 * Runs `npx tsx <file> [args]` in `dir`, in a process group of its own, as a terminal would: a signal sent with
 * `ctrlC()` reaches npx, tsx and the script together, like Ctrl-C does. npm is told to stay offline.
 */
export function startWithNpx(dir: string, file: string, env: NodeJS.ProcessEnv, args: string[] = []): ScriptRun {
  const child = spawn("npx", ["tsx", file, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, npm_config_offline: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.add(child);
  const run: ScriptRun = {
    child,
    stdout: "",
    stderr: "",
    // 'close', not 'exit': npx may end first, and the script's last lines still come through the pipe it shares.
    exited: new Promise((resolve) => child.on("close", (code) => (running.delete(child), resolve(code)))),
    waitForOutput: (pattern, timeoutMs = 30_000) =>
      eventually(
        () => pattern.test(run.stdout),
        `${file} to print ${pattern} (got: ${run.stdout}${run.stderr})`,
        timeoutMs,
      ),
  };
  child.stdout.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

/** Runs `npx tsx <file>` in `dir` to its end. */
export async function runWithNpx(dir: string, file: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  const run = startWithNpx(dir, file, env, args);
  const code = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}

/** Ctrl-C in a terminal: SIGINT to the whole foreground process group. */
export function ctrlC(run: ScriptRun): void {
  process.kill(-run.child.pid!, "SIGINT");
}

/** Whether any process of the run's group (npx, tsx, the script) is still alive. */
export function groupAlive(run: ScriptRun): boolean {
  try {
    process.kill(-run.child.pid!, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process group a test left running (npx, tsx and the script), so nothing outlives the suite. */
export function killNpxRuns(): void {
  for (const child of running) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  running.clear();
}
