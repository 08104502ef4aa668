/**
 * Queries share the event loop in slices: a query runs at most QUERY_SLICE_MS, then waits its turn behind every other
 * query in flight, one slice per turn of the loop, so a plain GET waits for one slice, not for twenty whole queries.
 */

/** CPU time one query may take before it lets other work (and other queries) run. */
export const QUERY_SLICE_MS = 5;

const waiting: (() => void)[] = [];
let scheduled = false;

/** Grants the next waiting query one slice, in the loop's next turn (after the I/O that is ready now). */
function scheduleNext(): void {
  if (scheduled || !waiting.length) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    waiting.shift()!();
  });
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    scheduleNext();
  });
}

/** Runs `work` (which yields wherever it may pause) to its end, in slices of at most QUERY_SLICE_MS. */
export async function runInSlices<T>(work: Generator<void, T>, sliceMs = QUERY_SLICE_MS): Promise<T> {
  for (;;) {
    await nextTurn();
    const deadline = performance.now() + sliceMs;
    let step: IteratorResult<void, T>;
    try {
      do step = work.next();
      while (!step.done && performance.now() < deadline);
    } finally {
      scheduleNext(); // whether this query goes on, ends or throws, the next one gets its turn
    }
    if (step.done) return step.value;
  }
}

/** Runs `work` to its end at once (pure callers and tests that own the whole loop). */
export function runAtOnce<T>(work: Generator<void, T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}
