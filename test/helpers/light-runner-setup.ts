/**
 * What jest's own runner gives a test that jest-light-runner leaves out, added where circus registers each test and
 * hook: a timeout (`it(name, fn, ms)`, else DEFAULT_TIMEOUT_MS), and `it.concurrent`, whose tests start together
 * (at most MAX_CONCURRENCY at once, jest's default) when the first of them runs.
 *
 * Why the light runner: jest's runner loads every module again for each test file, in a fresh VM context. Here the
 * SDKs and the hub are loaded once per worker, which took about 0.4 CPU-s per file, a third of the suite's CPU time.
 * What that costs: test files in one worker share loaded modules, so state a test leaves in a module (the port map
 * of port-redirect.cjs, say) is there for the next file; and with `-t`, a selected concurrent test's siblings run too.
 */
import { addEventHandler } from "jest-circus";

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_CONCURRENCY = 5;

type Body = () => unknown;
interface Entry {
  type?: string;
  fn: Body;
  timeout?: number;
  name?: string;
  mode?: string;
  concurrent?: boolean;
  parent?: { children: Entry[] };
}
interface CircusState {
  currentDescribeBlock: { children: Entry[]; hooks: Entry[] };
  hasFocusedTests: boolean;
}

/** `fn`, failed after `ms` if it has not settled; its work goes on, as under jest. */
function withTimeout(fn: Body, ms: number, what: string): () => Promise<unknown> {
  return () => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Exceeded timeout of ${ms} ms for ${what}.`)), ms);
    });
    return Promise.race([Promise.resolve().then(fn), timedOut]).finally(() => clearTimeout(timer));
  };
}

let slotsInUse = 0;
const waitingForSlot: (() => void)[] = [];
async function inSlot<T>(work: () => Promise<T>): Promise<T> {
  if (slotsInUse >= MAX_CONCURRENCY) await new Promise<void>((resolve) => waitingForSlot.push(resolve));
  slotsInUse++;
  try {
    return await work();
  } finally {
    slotsInUse--;
    waitingForSlot.shift()?.();
  }
}

/** Each concurrent test's own body (with its timeout), and its run once started. */
const concurrentBodies = new WeakMap<Entry, () => Promise<unknown>>();
const started = new WeakMap<Entry, Promise<unknown>>();
const wrapped = new WeakSet<Entry>();

/** A concurrent test's body: the first to run starts itself and every concurrent sibling that will run. */
function concurrently(entry: Entry, state: CircusState): Body {
  return () => {
    if (!started.has(entry)) {
      for (const sibling of entry.parent?.children ?? []) {
        const body = concurrentBodies.get(sibling);
        const skipped = sibling.mode === "skip" || (state.hasFocusedTests && sibling.mode !== "only");
        if (body && !skipped && !started.has(sibling)) {
          const promise = inSlot(body);
          promise.catch(() => {}); // its own test reports it
          started.set(sibling, promise);
        }
      }
    }
    return started.get(entry);
  };
}

addEventHandler((event, state) => {
  const circusState = state as unknown as CircusState;
  const block = circusState.currentDescribeBlock;
  if (event.name === "add_test") {
    const entry = block.children[block.children.length - 1];
    if (entry?.type !== "test" || entry.fn === undefined) return; // circus refused it, and says why
    const run = withTimeout(entry.fn, entry.timeout ?? DEFAULT_TIMEOUT_MS, `the test "${entry.name}"`);
    if (entry.concurrent) concurrentBodies.set(entry, run);
    entry.fn = entry.concurrent ? concurrently(entry, circusState) : run;
  } else if (event.name === "add_hook") {
    const hook = block.hooks[block.hooks.length - 1];
    if (hook === undefined || wrapped.has(hook)) return; // circus refused it, and says why
    wrapped.add(hook);
    hook.fn = withTimeout(hook.fn, hook.timeout ?? DEFAULT_TIMEOUT_MS, "a hook");
  }
});
