/**
 * Every process a test starts (a tutorial script, `npx tsx`, the hub's CLI, the demo, bash) starts here: in a process
 * group of its own, so that stopping it stops what it started too (npx's tsx, tsx's script), whether the test passed
 * or failed. Nothing outlives the jest worker: what a test forgot is killed when the worker exits.
 */
import { ChildProcess, spawn } from "node:child_process";

export interface ProcessRun {
  readonly child: ChildProcess;
  /** What it printed so far: each stream, and both interleaved as they arrived. */
  readonly stdout: string;
  readonly stderr: string;
  readonly output: string;
  /** Its exit code (null after a signal), once it has ended and its output is read to the end. */
  readonly exited: Promise<number | null>;
  /** Resolves once stdout matches `pattern`; rejects with all it printed after `timeoutMs`, or when it ends first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` to the whole group, as a terminal's Ctrl-C does (SIGINT) or `kill` to a job. */
  signal(signal: NodeJS.Signals): void;
  /** Whether any process of the group is still alive (a zombie counts until it is reaped). */
  groupAlive(): boolean;
  /** Kills the whole group and waits for the end; harmless when it has ended already. */
  stop(): Promise<void>;
}

export interface StartOptions {
  cwd?: string;
  /** The whole environment: nothing of the test's own is passed on unless given here. */
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** Names the process in timeout messages. */
  label?: string;
}

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

// A test that timed out, or a worker jest ends: the groups go with it. process.kill is synchronous, so this works in
// 'exit' too.
process.on("exit", () => running.forEach((child) => killGroup(child, "SIGKILL")));

export function startProcess(command: string, args: string[], options: StartOptions = {}): ProcessRun {
  const label = options.label ?? [command, ...args].join(" ");
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
    uid: options.uid,
    gid: options.gid,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.add(child);
  let stdout = "";
  let stderr = "";
  let output = "";
  const changed = new Set<() => void>();
  const onChunk = (write: (text: string) => void) => (chunk: Buffer) => {
    write(chunk.toString());
    output += chunk.toString();
    changed.forEach((check) => check());
  };
  child.stdout.on(
    "data",
    onChunk((text) => (stdout += text)),
  );
  child.stderr.on(
    "data",
    onChunk((text) => (stderr += text)),
  );
  let ended = false;
  // 'close', not 'exit': the last lines may still be in the pipe when the process ends (npx may end before tsx).
  const exited = new Promise<number | null>((resolve) => {
    child.on("close", (code) => {
      ended = true;
      running.delete(child);
      changed.forEach((check) => check());
      resolve(code);
    });
    // A command that cannot start ends with 'close' too, after 'error'; the error goes into the output.
    child.on("error", (err) => (output += `${err.message}\n`));
  });
  const run: ProcessRun = {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get output() {
      return output;
    },
    exited,
    waitForOutput: (pattern, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const finish = (err?: Error) => {
          clearTimeout(timer);
          changed.delete(check);
          if (err) reject(err);
          else resolve();
        };
        const fail = (why: string) => new Error(`${label} ${why} before it printed ${pattern} (got: ${output})`);
        const check = () => {
          if (pattern.test(stdout)) finish();
          else if (ended) finish(fail("ended"));
        };
        const timer = setTimeout(() => finish(fail(`took ${timeoutMs} ms`)), timeoutMs);
        changed.add(check);
        check();
      }),
    signal: (signal) => killGroup(child, signal),
    groupAlive: () => {
      try {
        process.kill(-child.pid!, 0);
        return true;
      } catch {
        return false;
      }
    },
    stop: async () => {
      // The whole group even when its leader has ended: npx can end before the script it started.
      killGroup(child, "SIGKILL");
      await exited;
    },
  };
  return run;
}

/** Runs a command to its end; kills its group if it takes longer than `timeoutMs`, and then says so. */
export async function runProcess(
  command: string,
  args: string[],
  options: StartOptions & { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; output: string }> {
  const run = startProcess(command, args, options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">(
    (resolve) => (timer = setTimeout(() => resolve("timeout"), options.timeoutMs ?? 30_000)),
  );
  try {
    const code = await Promise.race([run.exited, timedOut]);
    if (code === "timeout") throw new Error(`${options.label ?? command} did not end in time (got: ${run.output})`);
    return { code, stdout: run.stdout, stderr: run.stderr, output: run.output };
  } finally {
    clearTimeout(timer);
    await run.stop();
  }
}

/** Stops every group still running: the net under the tests' own `finally`s. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map((child) => (killGroup(child, "SIGKILL"), new Promise((resolve) => child.once("close", resolve)))),
  );
}
