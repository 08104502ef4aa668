import { HubError } from "../localhub/core/errors";
import {
  Json,
  newTwin,
  patchProperties,
  patchTags,
  replaceProperties,
  replacementPatch,
} from "../localhub/core/twin-document";

const LEVELS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

/** { one: { two: ... { [last]: leaf } } } */
const nested = (names: string[], leaf: Json): Json => names.reduceRight((inner, name) => ({ [name]: inner }), leaf);

const T0 = "2026-01-01T00:00:00.000Z";
const T1 = "2026-01-02T00:00:00.000Z";

describe("twin patches", () => {
  it("merge objects, replace values and delete keys set to null, bumping $version", () => {
    const twin = newTwin(T0, false);
    const first = patchProperties(twin.desired, "desired", { a: 1, o: { x: 1, y: 2 } }, T0);
    const second = patchProperties(first, "desired", { a: null, o: { y: 3 } }, T1);
    expect(second.values).toEqual({ o: { x: 1, y: 3 } });
    expect(second.version).toBe(3);
    expect(second.metadata).toMatchObject({
      $lastUpdated: T1,
      $lastUpdatedVersion: 3,
      o: { x: { $lastUpdatedVersion: 2 }, y: { $lastUpdated: T1 } },
    });
    expect(second.metadata).not.toHaveProperty("a");
    expect(first.values).toEqual({ a: 1, o: { x: 1, y: 2 } }); // the previous state is left untouched
  });

  it("keep $lastUpdatedVersion off reported properties", () => {
    const reported = patchProperties(newTwin(T0, false).reported, "reported", { r: 1 }, T1);
    expect(reported.metadata.r).toEqual({ $lastUpdated: T1 });
  });

  it("refuse forbidden keys, long strings, huge integers and oversized sections", () => {
    const desired = newTwin(T0, false).desired;
    const refuse = (patch: any) => expect(() => patchProperties(desired, "desired", patch, T0)).toThrow(HubError);
    refuse({ "a.b": 1 });
    refuse({ "a b": 1 });
    refuse({ $x: 1 });
    refuse({ s: "x".repeat(4097) });
    refuse({ n: 2 ** 53 });
    refuse(Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, "y".repeat(4000)])));
    refuse([1, 2]);
    expect(() => patchProperties(desired, "desired", { ok: [1, "two", { three: 3 }], f: 1.5 }, T0)).not.toThrow();
  });

  it("accept the documentation's depth-10 example: the section root is not a level", () => {
    // iot-hub-devguide-device-twins.md, "Depth": tags.one.two.three.four.five.six.seven.eight.nine.ten.property
    const docsExample = nested(LEVELS, { property: "value" });
    expect(() => patchTags({}, docsExample)).not.toThrow();
    expect(() => patchProperties(newTwin(T0, false).desired, "desired", docsExample, T0)).not.toThrow();
    expect(() => patchProperties(newTwin(T0, false).reported, "reported", docsExample, T0)).not.toThrow();
  });

  it("refuse an eleventh level of objects or arrays below the section root with 400", () => {
    const eleven = nested([...LEVELS, "eleven"], { property: "value" });
    const arrayAtEleven = nested(LEVELS, { property: [1, 2] });
    for (const patch of [eleven, arrayAtEleven]) {
      expect(() => patchTags({}, patch)).toThrow(expect.objectContaining({ status: 400 }));
      expect(() => patchProperties(newTwin(T0, false).desired, "desired", patch, T0)).toThrow(/deeper than 10/);
    }
  });

  it("cap tags at 8 KB", () => {
    expect(() => patchTags({}, { t: "x".repeat(4000), u: "y".repeat(4000), v: "z".repeat(500) })).toThrow(HubError);
  });

  it("replace whole, and tell the device which keys went away", () => {
    const before = patchProperties(newTwin(T0, false).desired, "desired", { a: 1, b: 2 }, T0);
    const after = replaceProperties(before, "desired", { b: 3, c: 4, $version: 99 }, T1);
    expect(after.values).toEqual({ b: 3, c: 4 });
    expect(after.version).toBe(3);
    expect(replacementPatch(before.values, after.values)).toEqual({ a: null, b: 3, c: 4 });
  });
});
