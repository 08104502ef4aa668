/** Identity registry over REST, driven by the real azure-iothub Registry. */
import { Registry } from "azure-iothub";
import type { Hub } from "../localhub";
import { startTestHub } from "../helpers/hub";

let hub: Hub;
let registry: Registry;

beforeAll(async () => {
  hub = await startTestHub();
  registry = Registry.fromConnectionString(hub.connectionString);
});
afterAll(() => hub.stop());

const statusOf = (err: any) => err?.response?.statusCode;
const isBase64Of32Bytes = (key: string) =>
  Buffer.from(key, "base64").length === 32 && Buffer.from(key, "base64").toString("base64") === key;

describe("devices", () => {
  it("creates a device with hub-generated SAS keys and reads it back", async () => {
    const created = (await registry.create({ deviceId: "dev-create" })).responseBody;
    expect(created.deviceId).toBe("dev-create");
    expect(isBase64Of32Bytes(created.authentication!.symmetricKey!.primaryKey)).toBe(true);
    expect(isBase64Of32Bytes(created.authentication!.symmetricKey!.secondaryKey)).toBe(true);
    expect(created.status).toBe("enabled");
    expect(created.connectionState).toBe("Disconnected");
    const read = (await registry.get("dev-create")).responseBody;
    expect(read.etag).toBe(created.etag);
    expect(read.authentication!.symmetricKey!.primaryKey).toBe(created.authentication!.symmetricKey!.primaryKey);
  });

  it("keeps keys the caller provides", async () => {
    const primaryKey = Buffer.alloc(32, 1).toString("base64");
    const secondaryKey = Buffer.alloc(32, 2).toString("base64");
    const created = (
      await registry.create({ deviceId: "dev-keys", authentication: { symmetricKey: { primaryKey, secondaryKey } } })
    ).responseBody;
    expect(created.authentication!.symmetricKey).toEqual({ primaryKey, secondaryKey });
  });

  it("answers 409 DeviceAlreadyExistsError for a duplicate", async () => {
    await registry.create({ deviceId: "dev-dup" });
    const err = await registry.create({ deviceId: "dev-dup" }).catch((e) => e);
    expect(err.name).toBe("DeviceAlreadyExistsError");
    expect(statusOf(err)).toBe(409);
    expect(err.response.headers["iothub-errorcode"]).toBe("DeviceAlreadyExists");
  });

  it("answers 404 DeviceNotFoundError for a missing device", async () => {
    const err = await registry.get("nobody").catch((e) => e);
    expect(err.name).toBe("DeviceNotFoundError");
    expect(statusOf(err)).toBe(404);
  });

  it("updates with If-Match: * and disables a device", async () => {
    const created = (await registry.create({ deviceId: "dev-update" })).responseBody;
    const updated = (await registry.update({ deviceId: "dev-update", status: "disabled" })).responseBody;
    expect(updated.status).toBe("disabled");
    expect(updated.etag).not.toBe(created.etag);
    expect(updated.authentication!.symmetricKey!.primaryKey).toBe(created.authentication!.symmetricKey!.primaryKey);
  });

  it("lists devices and deletes them", async () => {
    await registry.create({ deviceId: "dev-delete" });
    const ids = (await registry.list()).responseBody.map((d) => d.deviceId);
    expect(ids).toEqual(expect.arrayContaining(["dev-create", "dev-delete"]));
    await registry.delete("dev-delete");
    expect(statusOf(await registry.get("dev-delete").catch((e) => e))).toBe(404);
    expect(statusOf(await registry.delete("dev-delete").catch((e) => e))).toBe(404);
  });

  it("refuses ids the hub does not allow", async () => {
    const err = await registry.create({ deviceId: "bad id with spaces" }).catch((e) => e);
    expect(err.name).toBe("ArgumentError");
    expect(err.response.headers["iothub-errorcode"]).toBe("ArgumentInvalid");
    expect(statusOf(await registry.create({ deviceId: "x".repeat(129) }).catch((e) => e))).toBe(400);
  });

  it("adds, updates and removes devices in bulk, reporting each failure", async () => {
    const added = (await registry.addDevices([{ deviceId: "bulk-1" }, { deviceId: "bulk-2" }, { deviceId: "dev-dup" }]))
      .responseBody;
    expect(added.isSuccessful).toBe(false);
    expect(added.errors).toEqual([expect.objectContaining({ deviceId: "dev-dup", errorCode: "DeviceAlreadyExists" })]);
    expect((await registry.get("bulk-2")).responseBody.status).toBe("enabled");
    const updated = (await registry.updateDevices([{ deviceId: "bulk-1", status: "disabled" }], true)).responseBody;
    expect(updated.isSuccessful).toBe(true);
    expect((await registry.get("bulk-1")).responseBody.status).toBe("disabled");
    // Without force, each update and removal must carry the device's current etag.
    const bulk2 = (await registry.get("bulk-2")).responseBody;
    const stale = (await registry.updateDevices([{ deviceId: "bulk-2", status: "disabled", etag: "stale" }], false))
      .responseBody;
    expect(stale.errors).toEqual([expect.objectContaining({ deviceId: "bulk-2", errorCode: "PreconditionFailed" })]);
    const current = (
      await registry.updateDevices([{ deviceId: "bulk-2", status: "disabled", etag: bulk2.etag }], false)
    ).responseBody;
    expect(current.isSuccessful).toBe(true);
    const removed = (await registry.removeDevices([{ deviceId: "bulk-1" }, { deviceId: "bulk-2" }], true)).responseBody;
    expect(removed.isSuccessful).toBe(true);
    expect(statusOf(await registry.get("bulk-1").catch((e) => e))).toBe(404);
  });
});

describe("modules", () => {
  beforeAll(async () => {
    await registry.create({ deviceId: "mod-host" });
  });

  it("adds a module with generated keys that getModule returns", async () => {
    await registry.addModule({ deviceId: "mod-host", moduleId: "m1" });
    const module = (await registry.getModule("mod-host", "m1")).responseBody;
    expect(module).toMatchObject({ deviceId: "mod-host", moduleId: "m1", connectionState: "Disconnected" });
    expect(isBase64Of32Bytes(module.authentication!.symmetricKey!.primaryKey)).toBe(true);
    expect(module).not.toHaveProperty("status");
  });

  it("answers 409 for a duplicate module, which the SDK also calls DeviceAlreadyExistsError", async () => {
    const err = await registry.addModule({ deviceId: "mod-host", moduleId: "m1" }).catch((e) => e);
    expect(statusOf(err)).toBe(409);
    expect(err.name).toBe("DeviceAlreadyExistsError");
    expect(err.response.headers["iothub-errorcode"]).toBe("ModuleAlreadyExistsOnDevice");
  });

  it("answers 404 for a module that does not exist, or on a device that does not exist", async () => {
    const missing = await registry.getModule("mod-host", "nope").catch((e) => e);
    expect(statusOf(missing)).toBe(404);
    expect(missing.response.headers["iothub-errorcode"]).toBe("ModuleNotFound");
    const noDevice = await registry.addModule({ deviceId: "no-such-device", moduleId: "m" }).catch((e) => e);
    expect(noDevice.name).toBe("DeviceNotFoundError");
  });

  it("updates a module only with the current etag, and always with force", async () => {
    const module = (await registry.getModule("mod-host", "m1")).responseBody;
    const updated = (await registry.updateModule({ ...module, managedBy: "me" })).responseBody;
    expect(updated.managedBy).toBe("me");
    const stale = await registry.updateModule({ ...module, managedBy: "stale" }).catch((e) => e);
    expect(stale.name).toBe("InvalidEtagError");
    expect(statusOf(stale)).toBe(412);
    const forced = (await registry.updateModule({ ...module, managedBy: "forced" }, true)).responseBody;
    expect(forced.managedBy).toBe("forced");
  });

  it("lists and removes the modules of a device", async () => {
    await registry.addModule({ deviceId: "mod-host", moduleId: "m2" });
    const ids = (await registry.getModulesOnDevice("mod-host")).responseBody.map((m) => m.moduleId).sort();
    expect(ids).toEqual(["m1", "m2"]);
    await registry.removeModule("mod-host", "m2");
    expect((await registry.getModulesOnDevice("mod-host")).responseBody.map((m) => m.moduleId)).toEqual(["m1"]);
  });

  it("allows at most 50 modules per device", async () => {
    await registry.create({ deviceId: "crowded" });
    for (let i = 0; i < 50; i++) await registry.addModule({ deviceId: "crowded", moduleId: `m${i}` });
    const err = await registry.addModule({ deviceId: "crowded", moduleId: "m50" }).catch((e) => e);
    expect(statusOf(err)).toBe(403);
    expect(err.response.headers["iothub-errorcode"]).toBe("TooManyModulesOnDevice");
  });

  it("deletes a device's modules with it", async () => {
    await registry.create({ deviceId: "parent" });
    await registry.addModule({ deviceId: "parent", moduleId: "child" });
    await registry.delete("parent");
    await registry.create({ deviceId: "parent" });
    expect(statusOf(await registry.getModule("parent", "child").catch((e) => e))).toBe(404);
  });
});
