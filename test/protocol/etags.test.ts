/**
 * Device etags never come back: a device deleted and re-created after a restart gets a new etag, so an If-Match
 * holding the old one is refused with 412 instead of overwriting the new device. Twin etags count per twin from
 * AAAAAAAAAAE=, as on Azure (azure-sdk-for-net SessionRecords DevicesClient_DeviceTwinLifecycle.json): a new twin
 * starts there again.
 */
import { tempDir } from "../helpers/hub";
import { ProtocolHub, createDevice, expectStillServed, ownerToken, rest, startProtocolHub } from "../helpers/raw";

const running: ProtocolHub[] = [];
async function start(dataDir: string): Promise<ProtocolHub> {
  const hub = await startProtocolHub({ dataDir, inMemory: false });
  running.push(hub);
  return hub;
}
afterAll(() => Promise.all(running.map(({ hub }) => hub.stop())));

async function etagsOf(hub: ProtocolHub, deviceId: string): Promise<{ device: string; twin: string }> {
  const device = JSON.parse((await rest(hub.hub, "GET", `/devices/${deviceId}`, { token: ownerToken(hub.hub) })).body);
  const twin = JSON.parse((await rest(hub.hub, "GET", `/twins/${deviceId}`, { token: ownerToken(hub.hub) })).body);
  return { device: device.etag, twin: twin.etag };
}

it("a device deleted and re-created after a restart gets a new device etag, and its stale If-Match gets 412", async () => {
  const dataDir = tempDir("etags-");
  const first = await start(dataDir);
  await createDevice(first.hub, "phoenix");
  const old = await etagsOf(first, "phoenix");
  const deleted = await rest(first.hub, "DELETE", "/devices/phoenix", {
    token: ownerToken(first.hub),
    headers: { "If-Match": "*" },
  });
  expect(deleted.status).toBe(204);
  // Nothing else that exists would keep the counter up: the probe device is removed too.
  await rest(first.hub, "DELETE", `/devices/${first.probe.deviceId}`, {
    token: ownerToken(first.hub),
    headers: { "If-Match": "*" },
  });
  await first.hub.stop();

  const second = await start(dataDir);
  await createDevice(second.hub, "phoenix");
  const fresh = await etagsOf(second, "phoenix");
  expect(fresh.device).not.toBe(old.device);
  expect([old.twin, fresh.twin]).toEqual(["AAAAAAAAAAE=", "AAAAAAAAAAE="]);

  const stalePut = await rest(second.hub, "PUT", "/devices/phoenix", {
    token: ownerToken(second.hub),
    body: JSON.stringify({ deviceId: "phoenix", status: "disabled" }),
    headers: { "If-Match": `"${old.device}"` },
  });
  expect(stalePut.status).toBe(412);
  const twinWritten = await rest(second.hub, "PATCH", "/twins/phoenix", {
    token: ownerToken(second.hub),
    body: JSON.stringify({ tags: { written: true } }),
    headers: { "If-Match": `"${fresh.twin}"` },
  });
  expect(twinWritten.status).toBe(200);
  const stalePatch = await rest(second.hub, "PATCH", "/twins/phoenix", {
    token: ownerToken(second.hub),
    body: JSON.stringify({ tags: { stale: true } }),
    headers: { "If-Match": `"${fresh.twin}"` },
  });
  expect(stalePatch.status).toBe(412);
  await expectStillServed(second);
});
