/**
 * The shape of a parsed twin query, shared by the parser (which builds it) and the evaluator (which compiles it).
 * Paths are kept as written; the evaluator resolves them against the FROM collection.
 */
import type { Json } from "../twin-document";

/** `undefined` is a documented constant of the language: it stands for "no value". */
export type Value = Json | undefined;

export type Path = string[];

export type CompareOp = "=" | "!=" | "<" | "<=" | ">" | ">=";
export type ArithOp = "+" | "-" | "*" | "/" | "%";
export type FunctionName = "IS_DEFINED" | "STARTSWITH" | "ENDSWITH";
export type AggregateName = "COUNT" | "AVG" | "SUM" | "MIN" | "MAX";

export type Expr =
  | { kind: "literal"; value: Value }
  | { kind: "array"; items: Value[] }
  | { kind: "path"; path: Path }
  | { kind: "not"; operand: Expr }
  | { kind: "negate"; operand: Expr }
  | { kind: "logical"; op: "AND" | "OR"; left: Expr; right: Expr }
  | { kind: "compare"; op: CompareOp; left: Expr; right: Expr }
  | { kind: "arith"; op: ArithOp; left: Expr; right: Expr }
  | { kind: "in"; negated: boolean; operand: Expr; items: Value[] }
  | { kind: "call"; name: FunctionName; args: Expr[] };

export type SelectItem =
  { kind: "path"; path: Path; alias?: string } | { kind: "aggregate"; name: AggregateName; path?: Path; alias: string };

export type Collection = "devices" | "devices.modules";

export interface QueryAst {
  top?: number;
  select: "*" | SelectItem[];
  from: Collection;
  where?: Expr;
  groupBy?: Path;
}
