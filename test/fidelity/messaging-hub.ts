/**
 * A hub with its messaging (AMQP edge, C2D queue, event log) for the messaging tests, on free ports that the SDKs
 * reach as localhost:443, 8883 and 5671 through port-redirect.cjs. Works whether hub.ts starts the messaging
 * itself or not yet.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { copyTestCertificates, tempDir } from "../helpers/hub";
import { Hub, HubOptions, startHub } from "../localhub/hub";
import { Messaging, MessagingOptions, startMessaging } from "../localhub/edges/amqp/messaging";
import { setPortMap } from "../localhub/port-redirect.cjs";

export interface MessagingHub {
  hub: Hub;
  messaging: Messaging;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts a hub (fresh state, or `dataDir`) with the AMQP edge, C2D queue and event log. */
export async function startMessagingHub(
  dataDir = tempDir(),
  options: Pick<MessagingOptions, "log" | "inMemory"> = {},
): Promise<MessagingHub> {
  copyTestCertificates(dataDir);
  const hubOptions: HubOptions & { amqpPort?: number } = {
    dataDir,
    log: options.log,
    inMemory: options.inMemory,
    httpsPort: 0,
    mqttPort: 0,
    amqpPort: 0,
  };
  const hub = await startHub(hubOptions);
  const wired = (hub as Hub & { messaging?: Messaging }).messaging;
  let messaging: Messaging;
  try {
    messaging =
      wired ??
      (await startMessaging({
        ...options,
        core: hub.core,
        dataDir,
        tls: {
          key: fs.readFileSync(path.join(dataDir, "server-key.pem"), "utf8"),
          cert: fs.readFileSync(path.join(dataDir, "server.pem"), "utf8"),
        },
        amqpPort: 0,
      }));
  } catch (err) {
    await hub.stop();
    throw err;
  }
  setPortMap({ 443: hub.ports.https, 8883: hub.ports.mqtt, 5671: messaging.amqp.port });
  return {
    hub,
    messaging,
    dataDir,
    stop: async () => {
      // The map is global to the process (jest runs later test files in it): leave it as found.
      setPortMap({});
      if (!wired) await messaging.stop();
      await hub.stop();
    },
  };
}
