/**
 * The SELECT and GROUP BY clauses: whole twins, projections named after their last path segment (or AS), and the
 * aggregates COUNT/AVG/SUM/MIN/MAX over all twins or per group, as rows of plain JSON.
 */
import type { Json, JsonObject } from "../twin-document";
import type { AggregateName, Path, QueryAst } from "./ast";
import { compileGetter, isObject, keyOf, resolvePath } from "./evaluate";
import { invalid } from "./lexer";

export type Selection =
  | { kind: "twins" }
  | { kind: "projection"; project: (twin: JsonObject) => JsonObject }
  | { kind: "aggregate"; rows: (twins: Iterable<JsonObject>) => JsonObject[] };

export function planSelection(ast: QueryAst): Selection {
  if (ast.select === "*") {
    if (ast.groupBy)
      throw invalid("SELECT * cannot be grouped: select the GROUP BY path and aggregates, e.g. COUNT() AS n");
    return { kind: "twins" };
  }
  checkNames(ast);
  const hasAggregate = ast.select.some((item) => item.kind === "aggregate");
  if (!hasAggregate && !ast.groupBy) return { kind: "projection", project: projection(ast) };
  if (ast.groupBy && ast.from !== "devices") {
    throw invalid("GROUP BY is supported only when querying device twins (FROM devices), as on the real hub");
  }
  return { kind: "aggregate", rows: aggregation(ast) };
}

/** Two columns with one name would silently lose one value: refuse, and say how to fix it. */
function checkNames(ast: QueryAst): void {
  const seen = new Set<string>();
  for (const item of ast.select as Exclude<QueryAst["select"], "*">) {
    const name = (item.alias ?? item.path![item.path!.length - 1]).toLowerCase();
    if (seen.has(name)) throw invalid(`two selected values are named '${name}': rename one with AS`);
    seen.add(name);
  }
}

/** A projected path that a twin lacks is left out of that twin's row, as the real hub does for undefined values. */
function projection(ast: QueryAst): (twin: JsonObject) => JsonObject {
  const columns = (ast.select as Exclude<QueryAst["select"], "*">).map((item) => column(item.path!, ast, item.alias));
  return (twin) => {
    const row: JsonObject = {};
    for (const put of columns) put(twin, row);
    return row;
  };
}

/** Writes one projected value under its alias, else under the twin's own spelling of the last segment. */
function column(written: Path, ast: QueryAst, alias?: string): (twin: JsonObject, row: JsonObject) => void {
  const path = resolvePath(written, ast.from);
  const parent = compileGetter(path.slice(0, -1));
  const last = path[path.length - 1];
  return (twin, row) => {
    const owner = parent(twin);
    if (!isObject(owner)) return;
    const key = keyOf(owner, last);
    if (key !== undefined) row[alias ?? key] = owner[key];
  };
}

interface Group {
  row: JsonObject;
  accumulators: Accumulator[];
}

interface Accumulator {
  add(twin: JsonObject): void;
  result(): Json | undefined;
}

function aggregation(ast: QueryAst): (twins: Iterable<JsonObject>) => JsonObject[] {
  const items = ast.select as Exclude<QueryAst["select"], "*">;
  const groupPath = ast.groupBy ? resolvePath(ast.groupBy, ast.from) : undefined;
  const sameAsGroup = (p: Path) =>
    groupPath !== undefined &&
    p.length === groupPath.length &&
    p.every((s, i) => s.toLowerCase() === groupPath[i].toLowerCase());
  for (const item of items) {
    if (item.kind === "path" && !sameAsGroup(resolvePath(item.path, ast.from))) {
      throw invalid(
        `'${item.path.join(".")}' must be an aggregate or the GROUP BY path in a query with ${groupPath ? "GROUP BY" : "aggregates"}`,
      );
    }
  }
  const groupValue = groupPath ? compileGetter(groupPath) : () => undefined;
  const groupColumns = items.flatMap((item) => (item.kind === "path" ? [column(item.path, ast, item.alias)] : []));
  const makers = items.flatMap((item) =>
    item.kind === "aggregate" ? [{ alias: item.alias, make: accumulator(item.name, item.path, ast) }] : [],
  );

  return (twins) => {
    const groups = new Map<string, Group>();
    const open = (twin: JsonObject, id: string): Group => {
      const row: JsonObject = {};
      for (const put of groupColumns) put(twin, row);
      const group = { row, accumulators: makers.map((m) => m.make()) };
      groups.set(id, group);
      return group;
    };
    for (const twin of twins) {
      const value = groupValue(twin);
      const id = value === undefined ? "" : "=" + JSON.stringify(value);
      const group = groups.get(id) ?? open(twin, id);
      for (const acc of group.accumulators) acc.add(twin);
    }
    // Aggregates without GROUP BY answer one row even over no twins: COUNT() is then 0.
    if (!groupPath && groups.size === 0) groups.set("", { row: {}, accumulators: makers.map((m) => m.make()) });
    return [...groups.values()].map(({ row, accumulators }) => {
      accumulators.forEach((acc, i) => {
        const result = acc.result();
        if (result !== undefined) row[makers[i].alias] = result;
      });
      return row;
    });
  };
}

/** AVG, SUM, MIN and MAX take numbers only; values of other types (or missing) are skipped. */
function accumulator(name: AggregateName, written: Path | undefined, ast: QueryAst): () => Accumulator {
  if (name === "COUNT") {
    return () => {
      let n = 0;
      return { add: () => void n++, result: () => n };
    };
  }
  const get = compileGetter(resolvePath(written!, ast.from));
  return () => {
    let count = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    return {
      add(twin) {
        const v = get(twin);
        if (typeof v !== "number") return;
        count++;
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      },
      result() {
        if (name === "SUM") return sum;
        if (count === 0) return undefined;
        return name === "AVG" ? sum / count : name === "MIN" ? min : max;
      },
    };
  };
}
