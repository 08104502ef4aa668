/**
 * @summary How the peers bench runs its load generator, readers and brokers: each in a process group of its own
 * (`node --import tsx`), talked to over IPC, and stopped as a whole group whatever happened.
 */
import { ChildProcess, fork } from "node:child_process";
import { TSX_LOADER } from "./hub-process";

export interface Child {
  process: ChildProcess;
  /** Resolves with the first IPC message that has `key`; rejects if the child exits first or after `timeoutMs`. */
  next<T = Record<string, unknown>>(key: string, timeoutMs?: number): Promise<T>;
  send(message: unknown): void;
  /** Kills the child's whole process group (SIGKILL) and waits until the child has exited. */
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Forks `script` (a file of this folder) as the leader of a new process group. */
export function startChild(script: string, env: NodeJS.ProcessEnv, args: string[] = []): Child {
  const child = fork(`${__dirname}/${script}`, args, {
    execArgv: ["--import", TSX_LOADER],
    env,
    detached: true,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = <T>(key: string, timeoutMs = DEFAULT_TIMEOUT_MS) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${script}: no "${key}" within ${timeoutMs / 1000} s`)), timeoutMs);
      const onMessage = (message: Record<string, unknown>) => {
        if (message && typeof message === "object" && key in message) done(undefined, message as T);
      };
      const onExit = (code: number | null) => done(new Error(`${script} exited with code ${code} before "${key}"`));
      const done = (err?: Error, value?: T) => {
        clearTimeout(timer);
        child.off("message", onMessage);
        child.off("exit", onExit);
        if (err) reject(err);
        else resolve(value!);
      };
      child.on("message", onMessage);
      child.once("exit", onExit);
    });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is gone already
      }
    }
    await exited;
  };
  return { process: child, next, send: (message) => child.send(message as never), stop };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();
