/**
 * The hub and the scripts keep separate copies of the identity id rule (config.ts is copied alone by readers): they
 * must accept and refuse the same ids, or a script would pass an id the hub refuses, or refuse one it takes.
 */
import { IDENTITY_ID_PATTERN as SCRIPTS_RULE } from "../../config";
import { IDENTITY_ID_PATTERN as HUB_RULE } from "../localhub/core/identity-id";

const CASES: [string, boolean][] = [
  ["myFirstDevice", true],
  ["a", true],
  ["x".repeat(128), true],
  ["-.%_*?!(),:=@$'", true],
  ["Device-01.v2", true],
  ["", false],
  ["x".repeat(129), false],
  ["my device", false],
  ["dev/1", false],
  ["dev#1", false],
  ["dev+1", false],
  ["dev&1", false],
  ["dév", false],
  ["設備", false],
  ["dev\n", false],
  ["\u0000", false],
  ["dev\t1", false],
];

it.each(CASES)("both rules agree on %j (accepted: %s)", (id, accepted) => {
  expect(HUB_RULE.test(id)).toBe(accepted);
  expect(SCRIPTS_RULE.test(id)).toBe(accepted);
});

it("the two rules are the same expression", () => {
  expect(HUB_RULE.source).toBe(SCRIPTS_RULE.source);
  expect(HUB_RULE.flags).toBe(SCRIPTS_RULE.flags);
});
