/** The direct-method calls a hub keeps waiting at once are bounded: one more gets 429, as from a throttled hub. */
import { HubError } from "../localhub/core/errors";
import { HubCore } from "../localhub/core/hub-core";
import { DirectMethods } from "../localhub/core/methods";
import { memoryStores } from "../localhub/stores";

it("answers 429 ThrottlingException to a call beyond the limit of waiting calls, and serves again once they end", async () => {
  const core = await HubCore.open("localhost", memoryStores());
  await core.identities.putDevice("asleep", {}, undefined);
  const methods = new DirectMethods(core.identities, core.events, 2);
  const call = () => methods.invoke("asleep", undefined, { methodName: "m", connectTimeoutInSeconds: 60 });
  const waiting = [call(), call()];
  let refused: unknown;
  try {
    void call();
  } catch (err) {
    refused = err;
  }
  expect(refused).toBeInstanceOf(HubError);
  expect(refused).toMatchObject({ status: 429, code: "ThrottlingException" });
  methods.cancelAll();
  await Promise.allSettled(waiting);
  const again = call();
  methods.cancelAll();
  await expect(again).rejects.toMatchObject({ status: 504 });
  await core.close();
});
