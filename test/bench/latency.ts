/**
 * @summary Round trips through the hub, one after another: a desired patch from the service to a module's
 * 'properties.desired' event, and a direct method from the service to a device's handler and back.
 */
import { performance } from "node:perf_hooks";
import { Client as ServiceClient, Registry } from "azure-iothub";
import { Client as DeviceClient, ModuleClient, Twin } from "azure-iot-device";
import { Percentiles, percentiles, sleep } from "./measure";

const WARMUP = 50;

/** Rejects after `ms` with `message`, for steps that must not stall the benchmark. */
const timeout = (ms: number, message: string) => sleep(ms).then(() => Promise.reject(new Error(message)));

/** `Registry.updateModuleTwin` call -> the module's 'properties.desired' event, `count` times. */
export async function patchLatency(
  registry: Registry,
  moduleString: string,
  transport: unknown,
  deviceId: string,
  moduleId: string,
  count: number,
): Promise<Percentiles> {
  const client = ModuleClient.fromConnectionString(moduleString, transport);
  await client.open();
  const twin: Twin = await client.getTwin();
  let waiting: { seq: number; resolve: (at: number) => void } | undefined;
  twin.on("properties.desired", (delta: { seq?: number }) => {
    if (waiting && delta.seq === waiting.seq) waiting.resolve(performance.now());
  });
  await twin.get(); // after the listener subscribed: from here on every patch reaches it
  const samples: number[] = [];
  for (let seq = 1; seq <= count + WARMUP; seq++) {
    const arrived = new Promise<number>((resolve) => (waiting = { seq, resolve }));
    const started = performance.now();
    await registry.updateModuleTwin(deviceId, moduleId, { properties: { desired: { seq } } }, "*");
    const at = await Promise.race([arrived, timeout(5000, `desired patch ${seq} never reached the module`)]);
    if (seq > WARMUP) samples.push(at - started);
  }
  // The SDK's close can hang: do not let it stall the benchmark.
  await Promise.race([client.close(), sleep(3000)]);
  return percentiles(samples);
}

/**
 * `Client.invokeDeviceMethod` -> REST -> the hub -> MQTT -> the device's `onDeviceMethod` handler, which answers at
 * once -> MQTT -> the hub -> the REST answer, `count` times.
 */
export async function methodLatency(
  connectionString: string,
  deviceString: string,
  transport: unknown,
  count: number,
): Promise<Percentiles> {
  const device = DeviceClient.fromConnectionString(deviceString, transport);
  const service = ServiceClient.fromConnectionString(connectionString);
  const deviceId = /DeviceId=([^;]+)/.exec(deviceString)![1];
  await device.open();
  device.onDeviceMethod("ping", (request, response) => {
    response.send(200, request.payload).catch((err: Error) => console.error(`method answer failed: ${err.message}`));
  });
  const call = (n: number) =>
    service.invokeDeviceMethod(deviceId, { methodName: "ping", payload: { n }, responseTimeoutInSeconds: 5 });
  // The SDK subscribes to methods lazily: call until the hub reaches the handler, then warm up.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const answered = await call(0).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) throw new Error("the device's method handler never answered");
    await sleep(50);
  }
  const samples: number[] = [];
  for (let n = 1; n <= count + WARMUP; n++) {
    const started = performance.now();
    // The SDK types the answer as any: it is the hub's { status, payload }.
    const result = (await call(n)).result as { payload?: { n?: number } };
    const elapsed = performance.now() - started;
    if (result.payload?.n !== n) throw new Error(`method call ${n} got ${JSON.stringify(result)}`);
    if (n > WARMUP) samples.push(elapsed);
  }
  await Promise.race([device.close(), sleep(3000)]);
  await Promise.race([service.close(), sleep(3000)]);
  return percentiles(samples);
}
