/**
 * A hub with its AMQP edge for the messaging tests, on free ports when the port-redirect preload is there (the
 * service SDK only dials 5671, 443 and 8883), else on the real ports: then run the tests under the port lock.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { copyTestCertificates, tempDir } from "../helpers/hub";
import { Hub, startHub } from "../localhub/hub";
import { Messaging, MessagingOptions, startMessaging } from "../localhub/edges/amqp/standalone";

const REDIRECT = path.join(__dirname, "../localhub/port-redirect.cjs");

export interface MessagingHub {
  hub: Hub;
  messaging: Messaging;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts a hub (fresh state, or `dataDir`) with the AMQP edge, C2D queue and event log. */
export async function startMessagingHub(
  dataDir = tempDir(),
  options: Omit<MessagingOptions, "amqpPort"> = {},
): Promise<MessagingHub> {
  copyTestCertificates(dataDir);
  const redirect = fs.existsSync(REDIRECT)
    ? (require(REDIRECT) as { setPortMap(map: Record<number, number>): void })
    : undefined;
  const hub = await startHub(redirect ? { dataDir, httpsPort: 0, mqttPort: 0 } : { dataDir });
  let messaging: Messaging;
  try {
    messaging = await startMessaging(hub, { ...options, amqpPort: redirect ? 0 : undefined });
  } catch (err) {
    await hub.stop();
    throw err;
  }
  redirect?.setPortMap({ 443: hub.ports.https, 8883: hub.ports.mqtt, 5671: messaging.amqp.port });
  return {
    hub,
    messaging,
    dataDir,
    stop: async () => {
      await messaging.stop();
      await hub.stop();
    },
  };
}
