import { createHmac } from "node:crypto";
import { HubCore } from "../localhub/core/hub-core";
import { createSasToken } from "../localhub/core/sas";
import { memoryStores } from "../localhub/stores";
import { ConnectionGrants, checkToken, scopeOf } from "../localhub/edges/amqp/auth";

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** An Event Hubs client's token: URI audience, signed with the key's text. */
function eventHubToken(audience: string, keyName: string, key: string, expiry = inAnHour()): string {
  const sr = encodeURIComponent(audience);
  const sig = createHmac("sha256", key).update(`${sr}\n${expiry}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiry}&skn=${keyName}`;
}

describe("AMQP authorization", () => {
  let core: HubCore;
  beforeAll(async () => {
    core = await HubCore.open("localhost", memoryStores());
  });
  afterAll(() => core.close());

  it("reads the path an audience covers, in IoT Hub style and in URI style", () => {
    expect(scopeOf("localhost", "localhost")).toBe("");
    expect(scopeOf("localhost/devices/d1", "localhost")).toBe("devices/d1");
    expect(scopeOf("sb://localhost:5671/localhost/ConsumerGroups/$Default/Partitions/0", "localhost")).toBe(
      "localhost/consumergroups/$default/partitions/0",
    );
  });

  it("accepts an Event Hubs token signed with the key's text, and refuses one signed like an IoT Hub token", () => {
    const policy = core.policies.find("service")!;
    const audience = "sb://localhost:5671/localhost/$management";
    expect(checkToken(core, eventHubToken(audience, "service", policy.primaryKey))).toMatchObject({
      principal: { kind: "policy", keyName: "service" },
      scope: "localhost/$management",
    });
    const iotHubStyle = createSasToken(audience, policy.primaryKey, inAnHour(), "service");
    expect(() => checkToken(core, iotHubStyle)).toThrow(/signature does not match/);
    expect(() => checkToken(core, eventHubToken(audience, "service", policy.primaryKey, 1000))).toThrow(/expired/);
  });

  it("lets a link through only under a live grant's scope and with the right", () => {
    const grants = new ConnectionGrants();
    const service = core.policies.find("service")!;
    const reader = core.policies.find("registryRead")!;
    const partition = "localhost/ConsumerGroups/$Default/Partitions/0";
    expect(() => grants.require(partition, "ServiceConnect")).toThrow(/No valid token/);
    grants.add(checkToken(core, eventHubToken(`sb://localhost/${partition}`, "registryRead", reader.primaryKey)));
    expect(() => grants.require(partition, "ServiceConnect")).toThrow(/lacks the permission ServiceConnect/);
    grants.add(checkToken(core, eventHubToken(`sb://localhost/${partition}`, "service", service.primaryKey)));
    expect(grants.require(partition, "ServiceConnect")).toMatchObject({ keyName: "service" });
    expect(() => grants.require("localhost/ConsumerGroups/$Default/Partitions/1", "ServiceConnect")).toThrow(
      /No valid token/,
    );
  });
});
