/**
 * The valid client of an attack test, as a reader's code is: azure-iothub's Registry reads a device and
 * azure-iot-device-mqtt's client connects as it and reads its twin. Both must still be served after the attack.
 */
import { Registry } from "azure-iothub";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { type Hub, setPortMap } from "../localhub";
import { moduleConnectionString } from "./hub";

/** Sends this process's SDK connections (localhost:443/8883/5671) to the hub's ephemeral ports. */
export function redirectSdks(hub: Hub): void {
  setPortMap(hub.redirects);
}

export async function expectSdkClientsServed(hub: Hub, deviceId = "probe"): Promise<void> {
  redirectSdks(hub);
  const registry = Registry.fromConnectionString(hub.connectionString);
  const { responseBody } = await registry.get(deviceId);
  expect(responseBody.deviceId).toBe(deviceId);
  const device = DeviceClient.fromConnectionString(moduleConnectionString(hub, deviceId), Mqtt);
  try {
    await device.open();
    const twin = await device.getTwin();
    expect(typeof twin.properties.desired.$version).toBe("number");
  } finally {
    await device.close().catch(() => {});
  }
}
