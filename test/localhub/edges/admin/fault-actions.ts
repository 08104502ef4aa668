/**
 * The fault actions as the admin API and the portal both take them: one identity, one action, its numbers. Checked
 * here once, applied through core/faults.ts.
 */
import type { HubCore } from "../../core/hub-core";
import { FaultError, FaultState, Faults } from "../../core/faults";
import { identityKey } from "../../core/records";

export const FAULT_ACTIONS = ["drop", "refuse-reconnects", "latency", "ignore-pings"] as const;
export type FaultAction = (typeof FAULT_ACTIONS)[number];

export function isFaultAction(name: string): name is FaultAction {
  return (FAULT_ACTIONS as readonly string[]).includes(name);
}

/** Applies an action to an identity that exists (a 404 from the core otherwise); FaultError for bad numbers. */
export function applyFault(
  core: HubCore,
  faults: Faults,
  deviceId: string,
  moduleId: string | undefined,
  action: FaultAction,
  body: unknown,
): void {
  core.identities.require(deviceId, moduleId);
  const key = identityKey(deviceId, moduleId);
  const options = body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  const number = (name: string, required: boolean): number | undefined => {
    const value = options[name];
    if (value === undefined && !required) return undefined;
    if (typeof value !== "number") throw new FaultError(`${action} needs "${name}" as a number`);
    return value;
  };
  if (action === "drop") faults.drop(key);
  else if (action === "refuse-reconnects") faults.refuseReconnects(key, number("seconds", true)!);
  else if (action === "latency") faults.addLatency(key, number("milliseconds", true)!, number("seconds", false));
  else faults.ignorePings(key, number("seconds", false));
}

/** A fault as JSON: seconds left rather than instants, `null` where it lasts until cleared. */
export function faultJson(state: FaultState, now = Date.now()) {
  const left = (until: number | undefined) =>
    until === undefined ? undefined : until === Infinity ? null : Math.ceil((until - now) / 1000);
  return {
    identity: state.key,
    ...(state.refuseUntilMs !== undefined ? { refuseReconnectsSecondsLeft: left(state.refuseUntilMs) } : {}),
    ...(state.latencyMs !== undefined
      ? { latencyMilliseconds: state.latencyMs, latencySecondsLeft: left(state.latencyUntilMs) }
      : {}),
    ...(state.ignorePingsUntilMs !== undefined ? { ignorePingsSecondsLeft: left(state.ignorePingsUntilMs) } : {}),
  };
}
