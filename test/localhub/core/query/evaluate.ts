/**
 * Compiles a parsed WHERE condition into one closure over a twin, so a query over thousands of twins walks no syntax
 * tree and splits no strings per row. Also resolves property paths, which SELECT and GROUP BY share.
 */
import type { JsonObject } from "../twin-document";
import type { Collection, CompareOp, Expr, Path, Value } from "./ast";
import { invalid } from "./lexer";

export type Getter = (twin: JsonObject) => Value;
type Compiled = (twin: JsonObject) => Value;

export const isObject = (v: Value): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const isPrimitive = (v: Value): v is null | boolean | number | string => v === null || typeof v !== "object";

/**
 * The key of `object` that `name` designates: the exact key, else one that differs only in case. The docs' own
 * example (`SELECT DeviceId, LastActivityTime` answering `deviceId`, `lastActivityTime`, articles/iot-hub/query-twins.md)
 * shows property names are matched without regard to case. Own keys only, so `constructor` is never found.
 */
export function keyOf(object: JsonObject, name: string): string | undefined {
  if (Object.hasOwn(object, name)) return name;
  const lower = name.toLowerCase();
  for (const key in object) if (key.toLowerCase() === lower && Object.hasOwn(object, key)) return key;
  return undefined;
}

/** `devices.x` (and `devices.modules.x` over module twins) name the same property as `x`. */
export function resolvePath(path: Path, from: Collection): Path {
  let rest = path;
  if (rest.length > 1 && rest[0].toLowerCase() === "devices") {
    rest = rest.slice(1);
    if (from === "devices.modules" && rest.length > 1 && rest[0].toLowerCase() === "modules") rest = rest.slice(1);
  }
  return rest;
}

export function compileGetter(path: Path): Getter {
  const segments = path.slice();
  return (twin) => {
    let value: Value = twin;
    for (const segment of segments) {
      if (!isObject(value)) return undefined;
      const key = keyOf(value, segment);
      if (key === undefined) return undefined;
      value = value[key];
    }
    return value;
  };
}

/** A condition holds only when it evaluates to `true`; anything else (null, undefined, a string...) is false. */
export function compileCondition(expr: Expr, from: Collection): (twin: JsonObject) => boolean {
  const compiled = compile(expr, from);
  return (twin) => compiled(twin) === true;
}

function compile(expr: Expr, from: Collection): Compiled {
  switch (expr.kind) {
    case "literal": {
      const value = expr.value;
      return () => value;
    }
    case "array":
      throw invalid("a [ ] list may appear only after IN or NIN");
    case "path":
      return compileGetter(resolvePath(expr.path, from));
    case "not": {
      const operand = compile(expr.operand, from);
      return (t) => {
        const v = operand(t);
        return typeof v === "boolean" ? !v : undefined;
      };
    }
    case "negate": {
      const operand = compile(expr.operand, from);
      return (t) => {
        const v = operand(t);
        return typeof v === "number" ? -v : undefined;
      };
    }
    case "logical":
      return logical(expr.op, compile(expr.left, from), compile(expr.right, from));
    case "compare":
      return comparison(expr.op, compile(expr.left, from), compile(expr.right, from));
    case "arith":
      return arithmetic(expr.op, compile(expr.left, from), compile(expr.right, from));
    case "in": {
      const operand = compile(expr.operand, from);
      const items = expr.items.filter(isPrimitive);
      const negated = expr.negated;
      return (t) => {
        const v = operand(t);
        if (v === undefined || !isPrimitive(v)) return undefined;
        return items.includes(v) !== negated;
      };
    }
    case "call": {
      const args = expr.args.map((a) => compile(a, from));
      if (expr.name === "IS_DEFINED") return (t) => args[0](t) !== undefined;
      const starts = expr.name === "STARTSWITH";
      return (t) => {
        const text = args[0](t);
        const fragment = args[1](t);
        if (typeof text !== "string" || typeof fragment !== "string") return undefined;
        return starts ? text.startsWith(fragment) : text.endsWith(fragment);
      };
    }
  }
}

/** Three-valued, as in the SQL dialects this one follows: false AND unknown is false, true OR unknown is true. */
function logical(op: "AND" | "OR", left: Compiled, right: Compiled): Compiled {
  if (op === "AND") {
    return (t) => {
      const l = left(t);
      if (l === false) return false;
      const r = right(t);
      if (r === false) return false;
      return l === true && r === true ? true : undefined;
    };
  }
  return (t) => {
    const l = left(t);
    if (l === true) return true;
    const r = right(t);
    if (r === true) return true;
    return l === false && r === false ? false : undefined;
  };
}

/**
 * Comparisons are between primitives only (docs: "comparisons are supported only between primitive types"): an
 * object, an array or a missing property makes the comparison undefined, hence false in a condition. Values of
 * different types are never equal; only two numbers or two strings (ordinal) can be ordered.
 */
function comparison(op: CompareOp, left: Compiled, right: Compiled): Compiled {
  const test = ORDER[op];
  return (t) => {
    const l = left(t);
    const r = right(t);
    if (l === undefined || r === undefined || !isPrimitive(l) || !isPrimitive(r)) return undefined;
    if (op === "=") return l === r;
    if (op === "!=") return l !== r;
    if ((typeof l === "number" && typeof r === "number") || (typeof l === "string" && typeof r === "string")) {
      return test(l, r);
    }
    return undefined;
  };
}

const ORDER: Record<CompareOp, (l: number | string, r: number | string) => boolean> = {
  "=": (l, r) => l === r,
  "!=": (l, r) => l !== r,
  "<": (l, r) => l < r,
  "<=": (l, r) => l <= r,
  ">": (l, r) => l > r,
  ">=": (l, r) => l >= r,
};

function arithmetic(op: string, left: Compiled, right: Compiled): Compiled {
  return (t) => {
    const l = left(t);
    const r = right(t);
    if (typeof l !== "number" || typeof r !== "number") return undefined;
    const v = op === "+" ? l + r : op === "-" ? l - r : op === "*" ? l * r : op === "/" ? l / r : l % r;
    return Number.isFinite(v) ? v : undefined;
  };
}
