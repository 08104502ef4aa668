/**
 * Microsoft's "IoT Hub connection string to Event Hubs" sample (azure-sdk-for-js, iothubConnectionString.ts) redone
 * with rhea: SASL PLAIN as `{policy}@sas.root.{hub}`, a receiver on `/messages/events/$management`, and the
 * connection string built from the `amqp:link:redirect` the hub answers with.
 */
import { createHmac } from "node:crypto";
import { create_container, EventContext } from "rhea";

function sasToken(resource: string, key: string, policy: string, expiresInSeconds = 300): string {
  const sr = encodeURIComponent(resource);
  const se = Math.ceil(Date.now() / 1000 + expiresInSeconds);
  const sig = encodeURIComponent(
    createHmac("sha256", Buffer.from(key, "base64")).update(`${sr}\n${se}`).digest("base64"),
  );
  return `SharedAccessSignature sr=${sr}&sig=${sig}&se=${se}&skn=${policy}`;
}

function field(connectionString: string, name: string): string {
  return new RegExp(`(?:^|;)${name}=([^;]*)`).exec(connectionString)?.[1] ?? "";
}

/** Resolves with the Event Hubs-compatible connection string, or rejects with the AMQP error the hub gave. */
export function readRedirect(iotHubConnectionString: string, port = 5671, password?: string): Promise<string> {
  const host = field(iotHubConnectionString, "HostName");
  const keyName = field(iotHubConnectionString, "SharedAccessKeyName");
  const key = field(iotHubConnectionString, "SharedAccessKey");
  const [hubName] = host.split(".");
  return new Promise((resolve, reject) => {
    const container = create_container();
    const connection = container.connect({
      transport: "tls",
      host,
      hostname: host,
      port,
      username: `${keyName}@sas.root.${hubName}`,
      password: password ?? sasToken(`${host}/messages/events`, key, keyName),
      reconnect: false,
    });
    const finish = (outcome: () => void) => {
      connection.close();
      outcome();
    };
    connection.on("connection_error", (context: EventContext) =>
      finish(() => reject(new Error(`connection refused: ${JSON.stringify(context.connection.error)}`))),
    );
    connection.on("disconnected", (context: EventContext) =>
      reject(new Error(`disconnected: ${String(context.error)}`)),
    );
    const receiver = connection.open_receiver({ source: { address: `amqps://${host}/messages/events/$management` } });
    receiver.on("receiver_error", (context: EventContext) => {
      const error = context.receiver?.error as
        { condition?: string; description?: string; info?: Record<string, string> } | undefined;
      const address = error?.info?.address ?? "";
      const entity = /:\d+\/(.*)\/\$management/i.exec(address)?.[1];
      if (error?.condition !== "amqp:link:redirect" || !error.info?.hostname || !entity) {
        return finish(() =>
          reject(Object.assign(new Error(error?.description ?? "refused"), { condition: error?.condition })),
        );
      }
      finish(() =>
        resolve(
          `Endpoint=sb://${error.info!.hostname}/;EntityPath=${entity};SharedAccessKeyName=${keyName};SharedAccessKey=${key}`,
        ),
      );
    });
  });
}
