/**
 * Faults on demand, for testing reconnection logic against the unmodified SDKs: drop one identity's connection now,
 * refuse its reconnects for a while, add latency to its messages, stop answering its MQTT pings. The admin REST API
 * and the portal set them here; the MQTT edge applies them. Nothing is stored: a restart clears every fault.
 */
import { EventEmitter } from "node:events";

/** Bounds on what a fault may ask for. */
export const MAX_FAULT_SECONDS = 3600;
export const MAX_LATENCY_MS = 60_000;
/** Identities with a fault at once; more is refused (400), so the table cannot grow without end. */
export const MAX_FAULTED_IDENTITIES = 1000;

export interface FaultState {
  /** `device` or `device/module`. */
  key: string;
  /** Until when CONNECTs are refused (ms since the epoch). */
  refuseUntilMs?: number;
  latencyMs?: number;
  latencyUntilMs?: number;
  /** Pings are left unanswered until then (Infinity: until cleared). */
  ignorePingsUntilMs?: number;
}

export class FaultError extends Error {}

interface FaultEvents {
  /** The identity's connections must end now. */
  drop: [key: string, reason: string];
}

export class Faults extends EventEmitter<FaultEvents> {
  private readonly states = new Map<string, FaultState>();

  constructor(
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** Ends the identity's connections now; its client may reconnect at once. */
  drop(key: string): void {
    this.log(`FAULT ${key}: connection dropped on demand`);
    this.emit("drop", key, "fault: connection dropped on demand");
  }

  /** Drops the identity's connection and refuses its CONNECTs for `seconds` (CONNACK 3, server unavailable). */
  refuseReconnects(key: string, seconds: number): void {
    this.stateOf(key).refuseUntilMs = this.now() + checkedSeconds(seconds) * 1000;
    this.log(`FAULT ${key}: connection dropped, reconnects refused for ${seconds} s (CONNACK 3, server unavailable)`);
    this.emit("drop", key, `fault: reconnects refused for ${seconds} s`);
  }

  /** Delays every packet to and from the identity by `ms`, for `seconds` (or until cleared). */
  addLatency(key: string, ms: number, seconds?: number): void {
    if (!Number.isInteger(ms) || ms < 1 || ms > MAX_LATENCY_MS) {
      throw new FaultError(`milliseconds must be a whole number from 1 to ${MAX_LATENCY_MS}`);
    }
    const state = this.stateOf(key);
    state.latencyMs = ms;
    state.latencyUntilMs = seconds === undefined ? Infinity : this.now() + checkedSeconds(seconds) * 1000;
    this.log(`FAULT ${key}: ${ms} ms latency on its messages${seconds === undefined ? "" : ` for ${seconds} s`}`);
  }

  /** Leaves the identity's MQTT PINGREQs unanswered, for `seconds` (or until cleared): its client should give up. */
  ignorePings(key: string, seconds?: number): void {
    this.stateOf(key).ignorePingsUntilMs =
      seconds === undefined ? Infinity : this.now() + checkedSeconds(seconds) * 1000;
    this.log(`FAULT ${key}: MQTT pings left unanswered${seconds === undefined ? "" : ` for ${seconds} s`}`);
  }

  /** Removes every fault of the identity. */
  clear(key: string): boolean {
    const had = this.states.delete(key);
    if (had) this.log(`FAULT ${key}: cleared`);
    return had;
  }

  /** Seconds left in a refusal period, or 0 when CONNECTs are accepted. */
  refusingFor(key: string): number {
    const until = this.active(key)?.refuseUntilMs ?? 0;
    return Math.max(0, (until - this.now()) / 1000);
  }

  latencyOf(key: string): number {
    const state = this.active(key);
    return state?.latencyMs && (state.latencyUntilMs ?? 0) > this.now() ? state.latencyMs : 0;
  }

  ignoresPings(key: string): boolean {
    return (this.active(key)?.ignorePingsUntilMs ?? 0) > this.now();
  }

  /** The faults in force, for the admin API and the portal. */
  list(): FaultState[] {
    return [...this.states.keys()].map((key) => this.active(key)).filter((s): s is FaultState => s !== undefined);
  }

  private stateOf(key: string): FaultState {
    let state = this.states.get(key);
    if (!state) {
      if (this.states.size >= MAX_FAULTED_IDENTITIES) {
        throw new FaultError(`at most ${MAX_FAULTED_IDENTITIES} identities may have faults at once: clear some`);
      }
      this.states.set(key, (state = { key }));
    }
    return state;
  }

  /** The identity's state with what has expired taken out; undefined (and forgotten) once nothing is left. */
  private active(key: string): FaultState | undefined {
    const state = this.states.get(key);
    if (!state) return undefined;
    const now = this.now();
    if ((state.refuseUntilMs ?? 0) <= now) delete state.refuseUntilMs;
    if ((state.latencyUntilMs ?? 0) <= now) {
      delete state.latencyMs;
      delete state.latencyUntilMs;
    }
    if ((state.ignorePingsUntilMs ?? 0) <= now) delete state.ignorePingsUntilMs;
    if (state.refuseUntilMs === undefined && state.latencyMs === undefined && state.ignorePingsUntilMs === undefined) {
      this.states.delete(key);
      return undefined;
    }
    return state;
  }
}

function checkedSeconds(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_FAULT_SECONDS) {
    throw new FaultError(`seconds must be a whole number from 1 to ${MAX_FAULT_SECONDS}`);
  }
  return seconds;
}
