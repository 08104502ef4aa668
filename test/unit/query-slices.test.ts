/** Query slices: work that yields is run in turns, other work runs between turns, and a failing query frees its turn. */
import { runAtOnce, runInSlices } from "../localhub/core/query/slices";

/** Work that takes `ms` of CPU per step for `steps` steps, recording each step under `name`. */
function* busy(name: string, steps: number, ms: number, trace: string[]): Generator<void, string> {
  for (let i = 0; i < steps; i++) {
    const until = performance.now() + ms;
    while (performance.now() < until);
    trace.push(name);
    yield;
  }
  return name;
}

it("interleaves two queries and lets a timer run before both end", async () => {
  const trace: string[] = [];
  const timer = new Promise<void>((resolve) => setImmediate(() => (trace.push("other"), resolve())));
  const results = await Promise.all([runInSlices(busy("a", 20, 1, trace), 3), runInSlices(busy("b", 20, 1, trace), 3)]);
  await timer;
  expect(results).toEqual(["a", "b"]);
  const lastA = trace.lastIndexOf("a");
  const lastB = trace.lastIndexOf("b");
  expect(trace.indexOf("other")).toBeLessThan(Math.min(lastA, lastB));
  expect(trace.indexOf("b")).toBeLessThan(lastA); // b started before a finished
});

it("a query that throws fails alone, and the one waiting behind it still runs", async () => {
  function* failing(): Generator<void, string> {
    yield;
    throw new Error("bad query");
  }
  const trace: string[] = [];
  const [bad, good] = await Promise.allSettled([runInSlices(failing(), 1), runInSlices(busy("ok", 5, 1, trace), 1)]);
  expect(bad.status).toBe("rejected");
  expect(good).toEqual({ status: "fulfilled", value: "ok" });
});

it("runs at once for callers that own the loop", () => {
  expect(runAtOnce(busy("now", 3, 0, []))).toBe("now");
});
