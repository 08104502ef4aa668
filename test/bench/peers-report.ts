/**
 * @summary The peers part of `npm run bench`: runs peers.ts and prints its table, each figure also as a ratio to
 * mosquitto's (or aedes' when mosquitto is not installed), and puts the figures into the bench's JSON.
 */
import { PER_SENDER, SENDERS, measurePeers } from "./peers";
import { round } from "./measure";

export async function measurePeersPart(
  hubDir: string,
  rounds: number,
  results: Record<string, unknown>,
  log: (line: string) => void,
): Promise<void> {
  log(
    `7. Peers: ${SENDERS} TLS senders x ${PER_SENDER} QoS 1 PUBLISHes (200 in flight each) and one reader that must get every message; median of ${rounds} rounds`,
  );
  const peers = await measurePeers(hubDir, rounds, (text) => log(`   ${text}`));
  const base = peers.mosquitto ?? peers.aedes;
  // Medians divided by medians here; the targets use the median of each round's ratio (printed below the table).
  const ratio = (n: number, of: number) => `${round(n / of)}x`.padStart(7);
  const row = (name: string, ingest: number | undefined, delivered: number) =>
    `   ${name.padEnd(44)} ${ingest === undefined ? "".padStart(8) : String(ingest).padStart(8)} ` +
    `${ingest === undefined ? "".padStart(7) : ratio(ingest, base.ingestPerSec)} ` +
    `${String(delivered).padStart(10)} ${ratio(delivered, base.deliveredPerSec)}`;
  log(
    `   ${"".padEnd(44)} ${"ingest/s".padStart(8)} ${"ratio".padStart(7)} ${"deliver/s".padStart(10)} ${"ratio".padStart(7)}`,
  );
  log(row("hub, raw AMQP reader (durable before PUBACK)", peers.hub.ingestPerSec, peers.hub.readBackPerSec));
  log(row("hub, EventHubConsumerClient", undefined, peers.hub.sdkReadBackPerSec));
  log(
    row(
      `${peers.aedes.name} (in-memory, PUBACK before storing)`,
      peers.aedes.ingestPerSec,
      peers.aedes.deliveredPerSec,
    ),
  );
  if (peers.mosquitto)
    log(
      row(
        `${peers.mosquitto.name} (no fsync per message)`,
        peers.mosquitto.ingestPerSec,
        peers.mosquitto.deliveredPerSec,
      ),
    );
  else log(`   mosquitto: not installed (apt-get install mosquitto / brew install mosquitto)`);
  log(`   hub CPU ${peers.hub.hubCpuMicrosPerMessage} µs per message (ingest and raw read-back)`);
  const r = peers.ratios;
  log("   the hub against each peer, each round's ratio, median over the rounds:");
  if (r.ingestToMosquitto !== undefined)
    log(
      `     to mosquitto: ingest ${r.ingestToMosquitto}x, raw read-back ${r.readBackToMosquittoDelivery}x, SDK read-back ${r.sdkReadBackToMosquittoDelivery}x of its delivery`,
    );
  log(
    `     to aedes: ingest ${r.ingestToAedes}x, raw read-back ${r.readBackToAedesDelivery}x, SDK read-back ${r.sdkReadBackToAedesDelivery}x of its delivery`,
  );
  const telemetry = (results.telemetry ?? {}) as Record<string, unknown>;
  results.telemetry = {
    ...telemetry,
    ingestPerSec: peers.hub.ingestPerSec,
    readBackPerSec: peers.hub.readBackPerSec,
    sdkReadBackPerSec: peers.hub.sdkReadBackPerSec,
    hubCpuMicrosPerMessage: peers.hub.hubCpuMicrosPerMessage,
  };
  const peerFigures = (p: { ingestPerSec: number; deliveredPerSec: number; name: string }) => ({
    name: p.name,
    ingestPerSec: p.ingestPerSec,
    deliveredPerSec: p.deliveredPerSec,
  });
  results.peers = {
    mosquitto: peers.mosquitto ? peerFigures(peers.mosquitto) : "not installed",
    aedes: peerFigures(peers.aedes),
    rounds,
    ratios: peers.ratios,
  };
}
