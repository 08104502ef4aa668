/**
 * jest-light-runner in child processes, started here with one fix: each test file gets its own channel for the worker
 * data a fresh worker asks for. jest-light-runner's child-process runner shares one channel among all its workers
 * and answers every worker that has a task at the first one's question, then forgets them; a worker whose answer came
 * before it listened waited for it forever, and `npm test` hung in about one run in five. The tests themselves run in
 * jest-light-runner's own worker (its worker-runner.js), unchanged. Jest loads this file through tsx (run-jest.ts).
 */
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { Config } from "@jest/types";
import type { Test, TestResult } from "@jest/test-result";
import type { ChildProcess } from "node:child_process";

const WORKER = pathToFileURL(path.join(path.dirname(require.resolve("jest-light-runner")), "worker-runner.js"));
/**
 * How a worker loads TypeScript: tsx's CommonJS hook, and one ESM hook that hands the test files jest-light-runner
 * imports to the CommonJS loader (why: load-tests-as-commonjs.mjs).
 */
const HOOKS = pathToFileURL(path.join(__dirname, "load-tests-as-commonjs.mjs")).href;
const WORKER_EXEC_ARGV = [
  "--require",
  require.resolve("tsx/cjs"),
  "--import",
  `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(HOOKS)})`,
];

/** What a jest-light-runner worker asks its parent for once, and the answer it waits for. */
const WORKER_DATA_QUESTION = "jest-light-runner-get-worker-data";
const WORKER_DATA_ANSWER = "jest-light-runner-worker-data";

type WorkerData = { globalConfig: Config.GlobalConfig; projectConfig: Config.ProjectConfig; runtime: string };
type Channel = { onMessage(listener: (message: unknown) => void): void; postMessage(message: unknown): void };

/** A channel for one task: tinypool hands it to the worker that runs the task, so the answer goes to that worker. */
function workerDataChannel(workerData: WorkerData): Channel {
  let toWorker: ((message: unknown) => void) | undefined;
  return {
    onMessage(listener) {
      toWorker = listener;
    },
    postMessage(message) {
      if (message === WORKER_DATA_QUESTION) toWorker?.({ type: WORKER_DATA_ANSWER, workerData });
    },
  };
}

export default class LightChildProcessRunner {
  constructor(private readonly globalConfig: Config.GlobalConfig) {}

  async runTests(
    tests: Test[],
    _watcher: unknown,
    onStart: (test: Test) => Promise<void>,
    onResult: (test: Test, result: TestResult) => Promise<void>,
    onFailure: (test: Test, error: unknown) => Promise<void>,
  ): Promise<void> {
    const { default: Tinypool } = await import("tinypool");
    const workers = Math.max(1, this.globalConfig.maxWorkers);
    const pools = new Map<Config.ProjectConfig, { pool: InstanceType<typeof Tinypool>; workerData: WorkerData }>();
    const poolFor = (projectConfig: Config.ProjectConfig) => {
      let entry = pools.get(projectConfig);
      if (!entry) {
        const pool = new Tinypool({
          filename: WORKER.href,
          runtime: "child_process",
          minThreads: workers,
          maxThreads: workers,
          env: process.env as Record<string, string>,
          execArgv: WORKER_EXEC_ARGV,
          trackUnmanagedFds: false,
        });
        entry = { pool, workerData: { globalConfig: this.globalConfig, projectConfig, runtime: "child_process" } };
        pools.set(projectConfig, entry);
      }
      return entry;
    };

    const queue = [...tests];
    const lane = async () => {
      for (let test = queue.shift(); test; test = queue.shift()) {
        const { pool, workerData } = poolFor(test.context.config);
        try {
          await onStart(test);
          const result = (await pool.run(test.path, { channel: workerDataChannel(workerData) })) as TestResult;
          await onResult(test, result);
        } catch (error) {
          await onFailure(test, error);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, lane));

    for (const { pool } of pools.values()) {
      // A worker is first disconnected, as jest-light-runner does, so that it ends by itself and its 'exit' handlers
      // run (test/helpers/processes.ts stops what a test left running there); tinypool kills one that does not end.
      for (const worker of pool.threads as unknown as { process: ChildProcess }[]) {
        const child = worker.process;
        const kill = child.kill.bind(child);
        child.kill = (signal?: NodeJS.Signals | number) => {
          child.kill = kill;
          if (signal !== undefined) return kill(signal);
          child.disconnect();
          return true;
        };
      }
      await pool.destroy();
    }
  }
}
