/**
 * The latency fault's queue: work that must wait runs after its delay and strictly in the order it came, even when
 * the delay changes or ends meanwhile (a later packet never overtakes an earlier one). Bounded.
 */

/** Packets held at once by one connection's line; past this the connection is closed (a latency fault must not
 * turn a fast client into unbounded memory). */
export const MAX_DELAYED_PACKETS = 10_000;

export class DelayLine {
  private readonly queue: { at: number; run: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Runs `run` now if nothing waits and there is no delay; else queues it. False when the line is full. */
  push(delayMs: number, run: () => void): boolean {
    if (delayMs <= 0 && !this.queue.length) {
      run();
      return true;
    }
    if (this.queue.length >= MAX_DELAYED_PACKETS) return false;
    const last = this.queue[this.queue.length - 1]?.at ?? 0;
    this.queue.push({ at: Math.max(this.now() + delayMs, last), run });
    if (this.queue.length === 1) this.arm();
    return true;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private arm(): void {
    const head = this.queue[0];
    if (!head) return;
    this.timer = setTimeout(() => this.drain(), Math.max(0, head.at - this.now()));
  }

  private drain(): void {
    const now = this.now();
    while (this.queue.length && this.queue[0].at <= now) this.queue.shift()!.run();
    this.arm();
  }
}
