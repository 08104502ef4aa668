/**
 * @summary The bench's targets (issue 19), as ratios of figures measured in the same run where a peer is involved:
 * each that the run measured is printed as held or missed, and goes into the JSON as `targets`.
 */
import type { Percentiles } from "./measure";
import { round } from "./measure";

export interface Target {
  name: string;
  value: number;
  limit: string;
  held: boolean;
}

interface PeerRow {
  ingestPerSec: number;
  deliveredPerSec: number;
}

export interface MeasuredResults {
  peers?: {
    mosquitto: PeerRow | "not installed";
    aedes: PeerRow;
    ratios?: {
      ingestToMosquitto?: number;
      readBackToMosquittoDelivery?: number;
      ingestToAedes: number;
      readBackToAedesDelivery: number;
    };
  };
  telemetry?: { ingestPerSec?: number; readBackPerSec?: number };
  patchLatencyMs?: { mqtt: Percentiles; mqttWs: Percentiles };
  methodLatencyMs?: { mqtt: Percentiles };
  queryMs?: { allPages: number };
  scale?: { connectAllMs: number; tlsOnlyAllMs: number };
}

export function evaluateTargets(results: MeasuredResults): Target[] {
  const targets: Target[] = [];
  const atLeast = (name: string, value: number, limit: number, unit = "x") =>
    targets.push({ name, value: round(value), limit: `>= ${limit}${unit}`, held: value >= limit });
  const atMost = (name: string, value: number, limit: number, unit: string) =>
    targets.push({ name, value: round(value), limit: `<= ${limit}${unit}`, held: value <= limit });
  // Each round's ratio, median over the rounds (peers.ts); medians of the figures when a run has no ratios.
  const { peers } = results;
  const ingest = results.telemetry?.ingestPerSec ?? 0;
  const readBack = results.telemetry?.readBackPerSec ?? 0;
  const r = peers?.ratios;
  if (peers && peers.mosquitto !== "not installed") {
    const m = peers.mosquitto;
    atLeast("hub ingest / mosquitto ingest", r?.ingestToMosquitto ?? ingest / m.ingestPerSec, 0.5);
    atLeast(
      "hub raw read-back / mosquitto delivery",
      r?.readBackToMosquittoDelivery ?? readBack / m.deliveredPerSec,
      0.5,
    );
  }
  if (peers) {
    atLeast("hub ingest / aedes ingest", r?.ingestToAedes ?? ingest / peers.aedes.ingestPerSec, 1);
    atLeast(
      "hub raw read-back / aedes delivery",
      r?.readBackToAedesDelivery ?? readBack / peers.aedes.deliveredPerSec,
      1,
    );
  }
  if (results.scale)
    atMost("connect-all / bare TLS", results.scale.connectAllMs / results.scale.tlsOnlyAllMs, 1.1, "x");
  const latencies: [string, Percentiles | undefined][] = [
    ["desired patch (Mqtt)", results.patchLatencyMs?.mqtt],
    ["desired patch (MqttWs)", results.patchLatencyMs?.mqttWs],
    ["direct method (Mqtt)", results.methodLatencyMs?.mqtt],
  ];
  for (const [name, p] of latencies) {
    if (!p) continue;
    atMost(`${name} p50`, p.p50, 2, " ms");
    atMost(`${name} p99`, p.p99, 10, " ms");
  }
  if (results.queryMs) atMost("all pages of the 10,000-twin query", results.queryMs.allPages, 100, " ms");
  return targets;
}

export function targetLines(targets: Target[]): string[] {
  return targets.map(
    (t) => `   ${t.held ? "held  " : "MISSED"} ${t.name.padEnd(40)} ${String(t.value).padStart(8)} (target ${t.limit})`,
  );
}
