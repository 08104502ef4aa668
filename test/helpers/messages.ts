/** Messages as the tests send them, and device clients that take every cloud-to-device message they are given. */
import { Client as DeviceClient, Message } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";

/** A message with its system fields (messageId, contentType, ...) and application properties set. */
export function message(
  body: string | Buffer,
  fields: Partial<Message> = {},
  properties: Record<string, string> = {},
): Message {
  const result = Object.assign(new Message(body), fields);
  for (const [key, value] of Object.entries(properties)) result.properties.add(key, value);
  return result;
}

/**
 * A device client (not yet opened) that completes every C2D message it receives and keeps them in arrival order;
 * the caller opens and closes it.
 */
export function completingDevice(
  connectionString: string,
  transport: unknown = Mqtt,
): { client: DeviceClient; received: Message[] } {
  const client = DeviceClient.fromConnectionString(connectionString, transport);
  const received: Message[] = [];
  client.on("message", (incoming: Message) => {
    received.push(incoming);
    void client.complete(incoming);
  });
  return { client, received };
}
