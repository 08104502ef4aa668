/**
 * Recursive-descent parser for the twin query grammar the docs give (articles/iot-hub/iot-hub-devguide-query-language.md):
 * SELECT [TOP n] * | projections | aggregates FROM devices | devices.modules [WHERE condition] [GROUP BY path].
 */
import type {
  AggregateName,
  ArithOp,
  CompareOp,
  Collection,
  Expr,
  FunctionName,
  Path,
  QueryAst,
  SelectItem,
  Value,
} from "./ast";
import { type Token, TokenStream, invalid, tokenize } from "./lexer";

/** Parentheses and NOTs nest by recursion: a bound keeps a hostile query from exhausting the stack. */
const MAX_NESTING = 32;
/** A chain `a OR b OR ...` compiles to closures nested as deep as it is long: the same reason bounds it. */
const MAX_OPERATORS = 1000;

const COMPARE: Record<string, CompareOp> = {
  "=": "=",
  "!=": "!=",
  "<>": "!=",
  "<": "<",
  "<=": "<=",
  ">": ">",
  ">=": ">=",
};
const FUNCTIONS: Record<string, FunctionName> = {
  IS_DEFINED: "IS_DEFINED",
  STARTSWITH: "STARTSWITH",
  ENDSWITH: "ENDSWITH",
};
/** Documented for message-routing conditions only; named in the error so the user knows why. */
const ROUTING_ONLY = new Set(
  "ABS EXP POWER SQUARE CEILING FLOOR SIGN SQRT AS_NUMBER IS_ARRAY IS_BOOL IS_NULL IS_NUMBER IS_OBJECT IS_PRIMITIVE IS_STRING CONCAT LENGTH LOWER UPPER SUBSTRING INDEX_OF STARTS_WITH ENDS_WITH CONTAINS".split(
    " ",
  ),
);
const AGGREGATES = new Set<string>(["COUNT", "AVG", "SUM", "MIN", "MAX"]);
const CONSTANTS: Record<string, Value> = { TRUE: true, FALSE: false, NULL: null, UNDEFINED: undefined };
/** Words that end an expression or a list, so they are never read as property names. */
const CLAUSE_WORDS = new Set(["SELECT", "FROM", "WHERE", "GROUP", "BY", "AND", "OR", "NOT", "IN", "NIN", "AS", "TOP"]);
const UNSUPPORTED_CLAUSES = new Set(["ORDER", "JOIN", "HAVING", "DISTINCT", "LIMIT", "OFFSET", "UNION", "VALUE"]);

export function parseQuery(text: string): QueryAst {
  return new Parser(tokenize(text)).query();
}

class Parser extends TokenStream {
  private depth = 0;
  private operators = 0;

  query(): QueryAst {
    this.expectWord("SELECT");
    const top = this.acceptWord("TOP") ? this.topCount() : undefined;
    const select = this.acceptOp("*") ? "*" : this.selectList();
    this.expectWord("FROM");
    const from = this.collection();
    const where = this.acceptWord("WHERE") ? this.expression() : undefined;
    let groupBy: Path | undefined;
    if (this.acceptWord("GROUP")) {
      this.expectWord("BY");
      groupBy = this.path(this.next());
      if (this.peek().text === ",") throw invalid("GROUP BY takes one path; grouping by several is not supported");
    }
    const rest = this.peek();
    if (rest.kind !== "end") {
      const word = rest.text.toUpperCase();
      if (rest.kind === "ident" && UNSUPPORTED_CLAUSES.has(word)) {
        throw invalid(`${word} is not supported in twin queries`);
      }
      throw this.unexpected(rest, "the end of the query");
    }
    return { top, select, from, where, groupBy };
  }

  private topCount(): number {
    const t = this.next();
    if (t.kind !== "number" || !Number.isInteger(t.value) || t.value! < 0) {
      throw invalid(`TOP needs a whole number at column ${t.at}`);
    }
    return t.value!;
  }

  private selectList(): SelectItem[] {
    const items: SelectItem[] = [];
    do {
      items.push(this.selectItem());
    } while (this.acceptOp(","));
    return items;
  }

  private selectItem(): SelectItem {
    const t = this.next();
    const word = t.text.toUpperCase();
    if (t.kind === "ident" && AGGREGATES.has(word) && this.acceptOp("(")) {
      let path: Path | undefined;
      if (word !== "COUNT") path = this.path(this.next());
      this.expectOp(")");
      if (!this.acceptWord("AS")) throw invalid(`${word}() needs a name: write ${word}() AS name`);
      return { kind: "aggregate", name: word as AggregateName, path, alias: this.alias() };
    }
    const path = this.path(t);
    return this.acceptWord("AS") ? { kind: "path", path, alias: this.alias() } : { kind: "path", path };
  }

  private alias(): string {
    const t = this.next();
    if ((t.kind === "ident" && !CLAUSE_WORDS.has(t.text.toUpperCase())) || t.kind === "quoted") return t.text;
    throw this.unexpected(t, "a name after AS");
  }

  private collection(): Collection {
    const t = this.next();
    if (t.kind !== "ident" || t.text.toLowerCase() !== "devices")
      throw this.unexpected(t, "devices or devices.modules");
    if (!this.acceptOp(".")) return "devices";
    const sub = this.next();
    if (sub.text.toLowerCase() === "modules") return "devices.modules";
    if (sub.text.toLowerCase() === "jobs") throw invalid("devices.jobs is not supported: the local hub has no jobs");
    throw this.unexpected(sub, "modules after devices.");
  }

  /** condition := and (OR and)* — the usual precedence: OR < AND < NOT < comparison < + - < * / %. */
  private expression(): Expr {
    if (++this.depth > MAX_NESTING) throw invalid(`expression nested deeper than ${MAX_NESTING} levels`);
    let left = this.conjunction();
    while (this.acceptWord("OR") && this.counted())
      left = { kind: "logical", op: "OR", left, right: this.conjunction() };
    this.depth--;
    return left;
  }

  private conjunction(): Expr {
    let left = this.negation();
    while (this.acceptWord("AND") && this.counted())
      left = { kind: "logical", op: "AND", left, right: this.negation() };
    return left;
  }

  private negation(): Expr {
    if (!this.acceptWord("NOT")) return this.comparison();
    if (++this.depth > MAX_NESTING) throw invalid(`expression nested deeper than ${MAX_NESTING} levels`);
    const operand = this.negation();
    this.depth--;
    return { kind: "not", operand };
  }

  private comparison(): Expr {
    const left = this.additive();
    const t = this.peek();
    const word = t.kind === "ident" ? t.text.toUpperCase() : "";
    if (word === "IN" || word === "NIN") {
      this.i++;
      const list = this.additive();
      if (list.kind !== "array") throw invalid(`${word} needs a list of constants in [ ] at column ${t.at}`);
      return { kind: "in", negated: word === "NIN", operand: left, items: list.items };
    }
    if (word === "NOT" && this.tokens[this.i + 1]?.text.toUpperCase() === "IN") {
      throw invalid(`NOT IN is not part of the language at column ${t.at}: write NIN [...]`);
    }
    const op = t.kind === "op" ? COMPARE[t.text] : undefined;
    if (!op) return left;
    this.i++;
    const right = this.additive();
    for (const side of [left, right]) {
      if (side.kind === "array") throw invalid("comparisons are supported only between primitive values, not arrays");
    }
    return { kind: "compare", op, left, right };
  }

  private additive(): Expr {
    let left = this.multiplicative();
    for (let t = this.peek(); t.text === "+" || t.text === "-"; t = this.peek()) {
      this.i++;
      this.counted();
      left = { kind: "arith", op: t.text as ArithOp, left, right: this.multiplicative() };
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    for (let t = this.peek(); t.text === "*" || t.text === "/" || t.text === "%"; t = this.peek()) {
      this.i++;
      this.counted();
      left = { kind: "arith", op: t.text as ArithOp, left, right: this.unary() };
    }
    return left;
  }

  private unary(): Expr {
    if (this.peek().kind === "op" && (this.peek().text === "-" || this.peek().text === "+")) {
      const sign = this.next().text;
      if (++this.depth > MAX_NESTING) throw invalid(`expression nested deeper than ${MAX_NESTING} levels`);
      const operand = this.unary();
      this.depth--;
      if (operand.kind === "literal" && typeof operand.value === "number") {
        return sign === "-" ? { kind: "literal", value: -operand.value } : operand;
      }
      return sign === "-" ? { kind: "negate", operand } : operand;
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.next();
    if (t.kind === "number") return { kind: "literal", value: t.value! };
    if (t.kind === "string") return { kind: "literal", value: t.text };
    if (t.kind === "op" && t.text === "(") {
      const inner = this.expression();
      this.expectOp(")");
      return inner;
    }
    if (t.kind === "op" && t.text === "[") return { kind: "array", items: this.arrayConstant() };
    if (t.kind === "ident") {
      const word = t.text.toUpperCase();
      if (word in CONSTANTS) return { kind: "literal", value: CONSTANTS[word] };
      if (this.peek().text === "(") return this.call(t, word);
    }
    return { kind: "path", path: this.path(t) };
  }

  private call(t: Token, word: string): Expr {
    const name = FUNCTIONS[word];
    if (!name) {
      if (AGGREGATES.has(word)) throw invalid(`${word}() may appear only in the SELECT list`);
      if (ROUTING_ONLY.has(word)) {
        throw invalid(
          `${t.text}() is a message-routing function; twin queries support IS_DEFINED, STARTSWITH, ENDSWITH`,
        );
      }
      throw invalid(`unknown function ${t.text}() at column ${t.at}`);
    }
    this.expectOp("(");
    const args: Expr[] = [];
    if (!this.acceptOp(")")) {
      do args.push(this.expression());
      while (this.acceptOp(","));
      this.expectOp(")");
    }
    const arity = name === "IS_DEFINED" ? 1 : 2;
    if (args.length !== arity) throw invalid(`${name}() takes ${arity} argument${arity > 1 ? "s" : ""}`);
    if (name === "IS_DEFINED" && args[0].kind !== "path") throw invalid("IS_DEFINED() takes a property path");
    return { kind: "call", name, args };
  }

  /** `[c, c, ...]`: the language's array constants hold constants only. */
  private arrayConstant(): Value[] {
    const items: Value[] = [];
    if (this.acceptOp("]")) return items;
    do {
      const item = this.unary();
      if (item.kind !== "literal")
        throw invalid("a [ ] list may hold only constants (strings, numbers, true, false, null)");
      items.push(item.value);
    } while (this.acceptOp(","));
    this.expectOp("]");
    return items;
  }

  /** attribute_name ('.' attribute_name)*, each name an identifier or a `[[...]]` escaped name. */
  private path(first: Token): Path {
    const path = [this.segment(first)];
    while (this.acceptOp(".")) path.push(this.segment(this.next()));
    return path;
  }

  private segment(t: Token): string {
    if (t.kind === "quoted") {
      if (!t.text) throw invalid(`empty [[ ]] name at column ${t.at}`);
      return t.text;
    }
    if (t.kind !== "ident") throw this.unexpected(t, "a property name");
    const word = t.text.toUpperCase();
    if (word === "GROUP") throw invalid(`'group' is a keyword (column ${t.at}): write the property as [[group]]`);
    if (CLAUSE_WORDS.has(word)) throw this.unexpected(t, "a property name");
    return t.text;
  }

  private counted(): true {
    if (++this.operators > MAX_OPERATORS) throw invalid(`more than ${MAX_OPERATORS} operators: split the query`);
    return true;
  }
}
