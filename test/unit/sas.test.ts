/**
 * The hub's one SAS check and its one scope rule: a token reaches the path its `sr` names and what lies below it, by
 * whole path segment, and a token for the hub itself (empty scope) reaches everything, as on IoT Hub.
 */
import { createHmac } from "node:crypto";
import { authorize, covers, createSasToken, parseSasToken, rawSrOf, signatureMatches } from "../localhub/core/sas";

const KEY = Buffer.from("a key of thirty-two bytes, really").toString("base64");
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

describe("the scope a token covers", () => {
  it.each([
    ["", "devices", true],
    ["", "devices/d1/modules/m1", true],
    ["devices/d1", "devices/d1", true],
    ["devices/d1", "devices/d1/modules/m1", true],
    ["devices/d1", "devices/d10", false],
    ["devices/d1", "devices", false],
    ["devices/d1/modules/m1", "devices/d1", false],
  ])("scope '%s' %s '%s'", (scope, resource, expected) => {
    expect(covers(scope, resource)).toBe(expected);
  });

  it("lets a hub-wide policy token reach any identity, and a narrowed one only its own", () => {
    const policy = (scope: string) => ({
      kind: "policy" as const,
      keyName: "p",
      rights: ["ServiceConnect" as const],
      scope,
    });
    expect(() => authorize(policy(""), ["ServiceConnect"], "devices/any/modules/m")).not.toThrow();
    expect(() => authorize(policy("devices/a"), ["ServiceConnect"], "devices/a/modules/m")).not.toThrow();
    expect(() => authorize(policy("devices/a"), ["ServiceConnect"], "devices/b")).toThrow(/does not reach/);
  });
});

describe("the signature check", () => {
  it("takes an IoT Hub token signed with the base64-decoded key, over sr as written", () => {
    const text = createSasToken("localhost/devices/d1", KEY, inAnHour());
    const token = parseSasToken(text);
    expect(rawSrOf(text, token)).toBe(encodeURIComponent("localhost/devices/d1"));
    expect(signatureMatches(token, rawSrOf(text, token), [undefined, KEY])).toBe(true);
    expect(signatureMatches(token, rawSrOf(text, token), [KEY], "utf8")).toBe(false);
    expect(signatureMatches(token, token.sr, [KEY])).toBe(false);
  });

  it("takes an Event Hubs token signed with the key's text when asked to", () => {
    const sr = encodeURIComponent("sb://localhost/localhost");
    const se = inAnHour();
    const sig = createHmac("sha256", KEY).update(`${sr}\n${se}`).digest("base64");
    const text = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=p`;
    const token = parseSasToken(text);
    expect(signatureMatches(token, rawSrOf(text, token), [KEY], "utf8")).toBe(true);
    expect(signatureMatches(token, rawSrOf(text, token), [KEY])).toBe(false);
    expect(signatureMatches(token, rawSrOf(text, token), ["", null, undefined], "utf8")).toBe(false);
  });
});
