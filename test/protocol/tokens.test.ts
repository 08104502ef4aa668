/**
 * Tokens reach exactly as far as on the real hub: device and module tokens grant DeviceConnect only (the registry and
 * the service twin API answer 401), and the `sr` of any token is the URI prefix it may use, by whole path segment.
 */
import {
  Device,
  ProtocolHub,
  connectAs,
  createDevice,
  expectStillServed,
  ownerToken,
  rest,
  startProtocolHub,
} from "../helpers/raw";

let hub: ProtocolHub;
let devA: Device;
let modM: Device;
let devB: Device;
let devAB: Device;

beforeAll(async () => {
  hub = await startProtocolHub();
  devA = await createDevice(hub.hub, "devA");
  modM = await createDevice(hub.hub, "devA", "modM");
  devB = await createDevice(hub.hub, "devB");
  devAB = await createDevice(hub.hub, "devAB");
});
afterAll(() => hub.hub.stop());

const status = async (method: string, path: string, token: string, body?: string) =>
  (await rest(hub.hub, method, path, { token, body, headers: body ? { "If-Match": "*" } : {} })).status;

describe("a device's own SAS token", () => {
  it("cannot read its module's identity and keys from the registry (401)", async () => {
    const response = await rest(hub.hub, "GET", "/devices/devA/modules/modM", { token: devA.token() });
    expect(response.status).toBe(401);
    expect(response.body).not.toContain(modM.primaryKey);
    await expectStillServed(hub);
  });

  it("cannot read its own registry entry, list modules or read the service twin API (401)", async () => {
    for (const path of ["/devices/devA", "/devices/devA/modules", "/twins/devA", "/twins/devA/modules/modM"]) {
      expect([path, await status("GET", path, devA.token())]).toEqual([path, 401]);
    }
  });

  it("still connects its device over MQTT", async () => {
    const { client, returnCode } = await connectAs(hub.hub, "devA", devA.token());
    expect(returnCode).toBe(0);
    client.end();
  });

  it("cannot connect as its module (CONNACK 5)", async () => {
    const { returnCode } = await connectAs(hub.hub, "devA/modM", devA.token());
    expect(returnCode).toBe(5);
  });
});

describe("a module's own SAS token", () => {
  it("cannot read the registry or the service twin API (401)", async () => {
    for (const path of ["/devices/devA/modules/modM", "/twins/devA/modules/modM"]) {
      expect([path, await status("GET", path, modM.token())]).toEqual([path, 401]);
    }
  });

  it("cannot connect as its device (CONNACK 5)", async () => {
    const { returnCode } = await connectAs(hub.hub, "devA", modM.token());
    expect(returnCode).toBe(5);
  });
});

describe("a policy token scoped with sr to devices/devA", () => {
  const scoped = () => ownerToken(hub.hub, "devices/devA");

  it("reads devA and its modules", async () => {
    expect(await status("GET", "/devices/devA", scoped())).toBe(200);
    expect(await status("GET", "/devices/devA/modules/modM", scoped())).toBe(200);
  });

  it("cannot read or write devB, nor devAB whose name merely starts the same (401)", async () => {
    expect(await status("GET", "/devices/devB", scoped())).toBe(401);
    expect(await status("GET", "/devices/devAB", scoped())).toBe(401);
    expect(await status("PATCH", "/twins/devB", scoped(), JSON.stringify({ tags: { owned: true } }))).toBe(401);
    const twin = JSON.parse((await rest(hub.hub, "GET", "/twins/devB", { token: ownerToken(hub.hub) })).body);
    expect(twin.tags ?? {}).not.toHaveProperty("owned");
  });

  it("cannot list or query the whole registry (401)", async () => {
    expect(await status("GET", "/devices", scoped())).toBe(401);
  });

  it("connects devA over MQTT but not devB or devAB (CONNACK 5)", async () => {
    const own = await connectAs(hub.hub, "devA", scoped());
    expect(own.returnCode).toBe(0);
    own.client.end();
    expect((await connectAs(hub.hub, "devB", scoped())).returnCode).toBe(5);
    expect((await connectAs(hub.hub, "devAB", scoped())).returnCode).toBe(5);
    await expectStillServed(hub);
  });
});

it("an unscoped policy token still reaches every device", async () => {
  for (const device of [devA, devB, devAB]) {
    expect(await status("GET", `/devices/${device.deviceId}`, ownerToken(hub.hub))).toBe(200);
  }
});
