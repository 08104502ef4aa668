import { isAlreadyExists } from "../../CreateModule";
import {
  DEFAULT_TELEMETRY_INTERVAL,
  MAX_ATTEMPTS,
  parseTelemetryInterval,
  shouldRetry,
  withoutMetadata,
} from "../../UpdateModuleTwinDesiredProperties";
import { applyPatch, diffDesired, valuesOf } from "../../ReceiveModuleTwinDesiredPropertiesPatch";
import { ConfigError } from "../../config";

describe("CreateModule", () => {
  it("treats a 409 as 'already exists', whatever error class the SDK picked", () => {
    expect(isAlreadyExists({ name: "DeviceAlreadyExistsError" })).toBe(true);
    expect(isAlreadyExists({ name: "Error", response: { statusCode: 409 } })).toBe(true);
    expect(isAlreadyExists({ name: "UnauthorizedError", response: { statusCode: 401 } })).toBe(false);
  });
});

describe("UpdateModuleTwinDesiredProperties", () => {
  it("uses the tutorial's 122 unless a whole number is given", () => {
    expect(parseTelemetryInterval([])).toBe(DEFAULT_TELEMETRY_INTERVAL);
    expect(DEFAULT_TELEMETRY_INTERVAL).toBe(122);
    expect(parseTelemetryInterval(["30"])).toBe(30);
    for (const bad of [["abc"], ["1.5"], ["-3"], ["1", "2"]])
      expect(() => parseTelemetryInterval(bad)).toThrow(ConfigError);
  });

  it("retries an etag conflict a bounded number of times and nothing else", () => {
    const conflict = { name: "InvalidEtagError", response: { statusCode: 412 } };
    expect(shouldRetry(conflict, 1)).toBe(true);
    expect(shouldRetry(conflict, MAX_ATTEMPTS - 1)).toBe(true);
    expect(shouldRetry(conflict, MAX_ATTEMPTS)).toBe(false);
    expect(shouldRetry({ name: "ArgumentError", response: { statusCode: 400 } }, 1)).toBe(false);
  });

  it("prints properties without the $metadata timestamps but with $version", () => {
    const props = {
      desired: { a: 1, $metadata: { $lastUpdated: "t" }, $version: 2 },
      reported: { $metadata: {}, $version: 1 },
    };
    expect(withoutMetadata(props)).toEqual({ desired: { a: 1, $version: 2 }, reported: { $version: 1 } });
  });
});

describe("ReceiveModuleTwinDesiredPropertiesPatch", () => {
  it("diffs what changed while away into a patch, removals as null", () => {
    const before = { telemetryInterval: 122, mode: "a", nested: { x: 1, y: 2 } };
    const after = { telemetryInterval: 200, nested: { x: 1, y: 3 }, added: true };
    const patch = diffDesired(before, after);
    expect(patch).toEqual({ telemetryInterval: 200, mode: null, nested: { y: 3 }, added: true });
    expect(applyPatch(before, patch)).toEqual(after);
  });

  it("finds nothing to print when nothing changed", () => {
    expect(diffDesired({ a: [1, 2], b: { c: 1 } }, { a: [1, 2], b: { c: 1 } })).toEqual({});
  });

  it("strips the hub's bookkeeping from the desired values", () => {
    expect(valuesOf({ telemetryInterval: 5, $version: 3, $metadata: {} })).toEqual({ telemetryInterval: 5 });
  });
});
