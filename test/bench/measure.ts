/**
 * @summary What every part of `npm run bench` measures with: percentiles, medians, wall time of a command, and the CPU
 * time and peak memory of a process read from /proc.
 */
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Nearest-rank percentiles of latency samples, in ms with two decimals. */
export function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(sorted[sorted.length - 1]) };
}

/** Wall time of a command in ms, the median of `runs` runs after one warm-up. */
export function wallTime(command: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const started = performance.now();
    const result = spawnSync(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    const elapsed = performance.now() - started;
    if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${result.stderr.toString()}`);
    if (i > 0) times.push(elapsed);
  }
  return median(times);
}

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime and stime, in clock ticks of 1/100 s
}

/** Peak resident memory of a process, from the kernel's high-water mark. */
export function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return round(Number(kb[1]) / 1024, 1);
}

/** Runs `work` for each item with `concurrency` workers, one item at a time each. */
export async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<unknown>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}
