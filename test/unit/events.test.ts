/**
 * The core announces a change after the call that made it has returned its result, and a direct method's delivery is
 * tracked by the core itself: a listener only sends, it does not call back.
 */
import { HubCore } from "../localhub/core/hub-core";
import { memoryStores } from "../localhub/stores";

let core: HubCore;
beforeEach(async () => {
  core = await HubCore.open("localhost", memoryStores());
  await core.identities.putDevice("d", {}, undefined);
});
afterEach(() => core.close());

const announced = (name: "desired" | "revoked" | "method") =>
  new Promise<void>((resolve) => core.events.once(name, () => resolve()));

it("announces a desired patch only after the caller of the update has its answer", async () => {
  let answered = false;
  let answeredWhenAnnounced: boolean | undefined;
  core.events.on("desired", () => (answeredWhenAnnounced = answered));
  const event = announced("desired");
  await core.twins.patch("d", undefined, { properties: { desired: { a: 1 } } }, "*");
  answered = true;
  await event;
  expect(answeredWhenAnnounced).toBe(true);
});

it("still calls the other listeners, and keeps the change, when one listener throws", async () => {
  core.events.on("revoked", () => {
    throw new Error("broken");
  });
  const event = announced("revoked");
  await expect(core.identities.deleteDevice("d", "*")).resolves.toBeUndefined();
  await event;
  expect(core.identities.find("d")).toBeUndefined();
});

it("sends a method call to an identity that said it takes methods, and waits for one that did not", async () => {
  const sent: string[] = [];
  core.events.on("method", (request) => sent.push(request.methodName));
  await expect(core.methods.invoke("d", undefined, { methodName: "away" })).rejects.toMatchObject({ status: 404 });

  core.methods.available("d");
  const call = core.methods.invoke("d", undefined, { methodName: "here", responseTimeoutInSeconds: 5 });
  await announced("method");
  expect(sent).toEqual(["here"]);
  core.methods.respond("d", "2", 200, { ok: true });
  await expect(call).resolves.toEqual({ status: 200, payload: { ok: true } });

  core.methods.unavailable("d");
  const waiting = core.methods.invoke("d", undefined, { methodName: "later", connectTimeoutInSeconds: 5 });
  await new Promise((resolve) => setImmediate(resolve));
  expect(sent).toEqual(["here"]);
  core.methods.available("d");
  await announced("method");
  expect(sent).toEqual(["here", "later"]);
  core.methods.cancelAll();
  await expect(waiting).rejects.toMatchObject({ status: 504 });
});
