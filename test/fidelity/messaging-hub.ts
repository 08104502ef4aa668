/**
 * A hub with its messaging (AMQP edge, C2D queue, event log) for the messaging tests, on free ports that the SDKs
 * reach as localhost:443, 8883 and 5671 through port-redirect.cjs.
 */
import { startTestHub, tempDir } from "../helpers/hub";
import { setPortMap, type Hub } from "../localhub";

export interface MessagingHub {
  hub: Hub;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts a hub (fresh state, or `dataDir`) with the AMQP edge, C2D queue and event log. */
export async function startMessagingHub(
  dataDir = tempDir(),
  options: { log?: (line: string) => void; inMemory?: boolean } = {},
): Promise<MessagingHub> {
  const hub = await startTestHub(dataDir, { log: options.log, inMemory: options.inMemory });
  return {
    hub,
    dataDir,
    stop: async () => {
      // The map is global to the process (jest runs later test files in it): leave it as found.
      setPortMap({});
      await hub.stop();
    },
  };
}
