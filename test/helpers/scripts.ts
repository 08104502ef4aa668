/**
 * The tutorial's scripts as processes, started as a reader starts them. A reader's folder: the tutorial's files copied on their own next to only the tutorial's five packages, and the
 * scripts started there with `npx tsx <file>`, exactly as the README tells a reader to.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "./hub";
import { NODE_WITH_TSX, ROOT } from "./paths";
import { ProcessRun, StartOptions, runProcess, startProcess } from "./processes";

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

/** One of the tutorial scripts (or the demo) as its own process, as a reader starts it. */
export type ScriptRun = ProcessRun;

/**
 * Starts a tutorial script as `node --require tsx/cjs <script>` (tsx's command would add a process of its own), in an
 * empty directory unless `cwd` is given, so that a developer's .env cannot leak into the test.
 */
export function startScript(
  script: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  cwd = tempDir("script-"),
): ScriptRun {
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  return startProcess(node, [...nodeArgs, path.join(ROOT, script), ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    label: script,
  });
}

/** Runs a tutorial script to its end. */
export function runScript(script: string, env: NodeJS.ProcessEnv, args: string[] = [], cwd?: string) {
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  return runProcess(node, [...nodeArgs, path.join(ROOT, script), ...args], {
    cwd: cwd ?? tempDir("script-"),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    label: script,
  });
}

/** `npx tsx <file> [args]` in `dir`, as a terminal runs it; npm is told to stay offline. */
function npxOptions(dir: string, file: string, env: NodeJS.ProcessEnv): StartOptions {
  return {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, npm_config_offline: "true", ...env },
    label: `npx tsx ${file}`,
  };
}

/** Starts `npx tsx <file>`: its group holds npx, tsx and the script, so `signal("SIGINT")` is a terminal's Ctrl-C. */
export function startWithNpx(dir: string, file: string, env: NodeJS.ProcessEnv, args: string[] = []): ScriptRun {
  return startProcess("npx", ["tsx", file, ...args], npxOptions(dir, file, env));
}

/** Runs `npx tsx <file>` in `dir` to its end. */
export function runWithNpx(dir: string, file: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  return runProcess("npx", ["tsx", file, ...args], npxOptions(dir, file, env));
}
