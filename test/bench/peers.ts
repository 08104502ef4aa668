/**
 * @summary `npm run bench -- --only peers`: one telemetry load (10 TLS senders x 2,000 QoS 1 PUBLISHes, 200 in flight
 * each) against the hub, aedes and mosquitto, each read back by one reader that must get every message; the figures
 * as ratios of the same run, since absolute ones move by a factor of two between sittings on a shared machine.
 */
import * as path from "node:path";
import { Registry } from "azure-iothub";
import { startBenchMessagingHub } from "./hub-process";
import { cpuMs, median, round } from "./measure";
import { field } from "./messaging-clients";
import { startChild } from "./peer-children";
import { PeerBroker, mosquittoVersion, startAedes, startMosquitto } from "./peer-brokers";
import type { LoadPlan } from "./peer-load";
import type { ReaderPlan } from "./peer-reader";

export const SENDERS = 10;
export const PER_SENDER = 2000;
const TOTAL = SENDERS * PER_SENDER;

export interface LoadFigures {
  ingestPerSec: number;
  deliveredPerSec: number;
  /** CPU the reader process and the broker process spent, per message, from "go" to the last delivery. */
  readerCpuMicros: number;
  brokerCpuMicros: number;
}

/** One load: the reader subscribes, the senders connect, then all publish; times from the first byte sent. */
async function runLoad(
  brokerPid: number,
  senders: LoadPlan["senders"],
  port: number,
  reader: ReaderPlan,
  readerEnv: NodeJS.ProcessEnv,
  tag: string,
): Promise<LoadFigures> {
  const readerProcess = startChild("peer-reader.ts", readerEnv);
  const load = startChild("peer-load.ts", process.env);
  try {
    readerProcess.send(reader);
    await readerProcess.next("ready");
    load.send({ host: "localhost", port, senders, perSender: PER_SENDER, topicSuffix: `run=${tag}` });
    await load.next("connected");
    const acknowledged = load.next<{ started: number; acknowledged: number }>("acknowledged");
    const delivered = readerProcess.next<{ delivered: number }>("delivered");
    const readerCpu = cpuMs(readerProcess.process.pid!);
    const brokerCpu = cpuMs(brokerPid);
    load.send("go");
    const { started, acknowledged: lastAck } = await acknowledged;
    const { delivered: lastDelivered } = await delivered;
    const perMessage = (ms: number) => round((ms * 1000) / TOTAL, 1);
    return {
      ingestPerSec: Math.round(TOTAL / ((lastAck - started) / 1000)),
      deliveredPerSec: Math.round(TOTAL / ((lastDelivered - started) / 1000)),
      readerCpuMicros: perMessage(cpuMs(readerProcess.process.pid!) - readerCpu),
      brokerCpuMicros: perMessage(cpuMs(brokerPid) - brokerCpu),
    };
  } finally {
    await Promise.all([load.stop(), readerProcess.stop()]);
  }
}

const medianOf = (runs: LoadFigures[]): LoadFigures => ({
  ingestPerSec: median(runs.map((r) => r.ingestPerSec)),
  deliveredPerSec: median(runs.map((r) => r.deliveredPerSec)),
  readerCpuMicros: median(runs.map((r) => r.readerCpuMicros)),
  brokerCpuMicros: median(runs.map((r) => r.brokerCpuMicros)),
});

export interface PeersFigures {
  hub: { ingestPerSec: number; readBackPerSec: number; sdkReadBackPerSec: number; hubCpuMicrosPerMessage: number };
  aedes: LoadFigures & { name: string };
  mosquitto?: LoadFigures & { name: string };
  rounds: number;
  /** The hub's figures divided by a peer's of the same round, median over the rounds: the machine's load changes
   * between rounds more than between the loads of one round. */
  ratios: {
    ingestToMosquitto?: number;
    readBackToMosquittoDelivery?: number;
    sdkReadBackToMosquittoDelivery?: number;
    ingestToAedes: number;
    readBackToAedesDelivery: number;
    sdkReadBackToAedesDelivery: number;
  };
}

/** The median over rounds of hub[i][key] / peer[i][peerKey]. */
function ratioOf(hub: LoadFigures[], key: keyof LoadFigures, peer: LoadFigures[], peerKey: keyof LoadFigures): number {
  return round(median(hub.map((h, i) => h[key] / peer[i][peerKey])));
}

/** Device identities on the hub for the senders, with their keys. */
async function hubSenders(connectionString: string): Promise<LoadPlan["senders"]> {
  const registry = Registry.fromConnectionString(connectionString);
  const senders: LoadPlan["senders"] = [];
  for (let i = 0; i < SENDERS; i++) {
    const deviceId = `bench-peer-${i}`;
    const device = (await registry.create({ deviceId })).responseBody;
    senders.push({ deviceId, key: device.authentication!.symmetricKey!.primaryKey });
  }
  return senders;
}

/**
 * Runs `rounds` rounds, each one load against every broker in turn (so that a burst of load from elsewhere on the
 * machine hits all of them alike), and takes the median of each figure.
 */
export async function measurePeers(hubDir: string, rounds: number, log: (line: string) => void): Promise<PeersFigures> {
  const hub = await startBenchMessagingHub(path.join(hubDir, "peers"), hubDir);
  const peers: PeerBroker[] = [];
  try {
    peers.push(await startAedes(hubDir));
    if (mosquittoVersion()) peers.push(await startMosquitto(hubDir, path.join(hubDir, "mosquitto")));
    const senders = await hubSenders(hub.connectionString);
    const peerSenders = senders.map(({ deviceId }) => ({ deviceId, key: Buffer.alloc(32).toString("base64") }));
    const readerEnv = { ...process.env, ...hub.clientEnv };
    const eventHubConnectionString = hub.eventHubConnectionString;
    const hubPort = hub.portMap[8883];
    if (!field(hub.connectionString, "HostName")) throw new Error("the hub's connection string has no HostName");

    const raw: LoadFigures[] = [];
    const sdk: LoadFigures[] = [];
    const byPeer = new Map<string, LoadFigures[]>(peers.map((peer) => [peer.name, []]));
    for (let round_ = 1; round_ <= rounds; round_++) {
      const tag = `${Date.now()}`;
      const hubPid = hub.child.pid!;
      const hubLoad = (kind: "amqp" | "sdk") =>
        runLoad(hubPid, senders, hubPort, { kind, total: TOTAL, eventHubConnectionString }, readerEnv, tag);
      raw.push(await hubLoad("amqp"));
      sdk.push(await hubLoad("sdk"));
      for (const peer of peers) {
        const reader: ReaderPlan = { kind: "mqtt", total: TOTAL, host: "localhost", port: peer.port };
        byPeer.get(peer.name)!.push(await runLoad(peer.pid, peerSenders, peer.port, reader, process.env, tag));
      }
      const last = (runs: LoadFigures[]) => {
        const r = runs.at(-1)!;
        return `${r.ingestPerSec}/${r.deliveredPerSec} (CPU µs/msg ${r.brokerCpuMicros}/${r.readerCpuMicros})`;
      };
      log(`round ${round_}: ingest/delivered msgs/s (CPU per message: broker/reader)`);
      log(`  hub, raw reader ${last(raw)}; hub, SDK reader ${last(sdk)}`);
      log(`  ${peers.map((peer) => `${peer.name} ${last(byPeer.get(peer.name)!)}`).join("; ")}`);
    }
    const hubRaw = medianOf(raw);
    const aedes = byPeer.get(peers[0].name)!;
    const figures: PeersFigures = {
      hub: {
        ingestPerSec: hubRaw.ingestPerSec,
        readBackPerSec: hubRaw.deliveredPerSec,
        sdkReadBackPerSec: medianOf(sdk).deliveredPerSec,
        hubCpuMicrosPerMessage: hubRaw.brokerCpuMicros,
      },
      aedes: { name: peers[0].name, ...medianOf(aedes) },
      rounds,
      ratios: {
        ingestToAedes: ratioOf(raw, "ingestPerSec", aedes, "ingestPerSec"),
        readBackToAedesDelivery: ratioOf(raw, "deliveredPerSec", aedes, "deliveredPerSec"),
        sdkReadBackToAedesDelivery: ratioOf(sdk, "deliveredPerSec", aedes, "deliveredPerSec"),
      },
    };
    if (peers[1]) {
      const mosquitto = byPeer.get(peers[1].name)!;
      figures.mosquitto = { name: peers[1].name, ...medianOf(mosquitto) };
      figures.ratios.ingestToMosquitto = ratioOf(raw, "ingestPerSec", mosquitto, "ingestPerSec");
      figures.ratios.readBackToMosquittoDelivery = ratioOf(raw, "deliveredPerSec", mosquitto, "deliveredPerSec");
      figures.ratios.sdkReadBackToMosquittoDelivery = ratioOf(sdk, "deliveredPerSec", mosquitto, "deliveredPerSec");
    }
    return figures;
  } finally {
    await Promise.all(peers.map((peer) => peer.stop()));
    await hub.stop();
  }
}
