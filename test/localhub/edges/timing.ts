/** How long a request took, for the edges' log lines: `const started = process.hrtime.bigint()`, then msSince(started). */
export function msSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6;
}
