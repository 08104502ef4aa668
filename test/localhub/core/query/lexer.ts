/**
 * Twin query text as a stream of tokens: identifiers (with `$`), `[[...]]` escaped names, strings in either quote with
 * the documented escapes, decimal and 0x numbers, operators; and the cursor the parser reads them with.
 */
import { badRequest } from "../errors";

export type TokenKind = "ident" | "quoted" | "string" | "number" | "op" | "end";

export interface Token {
  kind: TokenKind;
  /** Identifier or operator text as written; for strings and `[[...]]` names, the decoded value. */
  text: string;
  /** Set for numbers. */
  value?: number;
  /** 1-based column of the token's first character, for error messages. */
  at: number;
}

/** Two-character operators first, so that `<=` is not read as `<` then `=`. */
const OPERATORS = ["<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", "[", "]", ",", ".", "*", "+", "-", "/", "%"];
const IDENT_START = /[A-Za-z_$]/;
const IDENT_PART = /[A-Za-z0-9_$]/;
const DIGIT = /[0-9]/;

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i++;
    } else if (c === "[" && text[i + 1] === "[") {
      // `tags.[[group]]`: the documented escape for a name that is a keyword or holds other characters.
      const close = text.indexOf("]]", i + 2);
      if (close < 0) throw invalid(`'[[' at column ${i + 1} is never closed with ']]'`);
      tokens.push({ kind: "quoted", text: text.slice(i + 2, close), at: i + 1 });
      i = close + 2;
    } else if (c === "'" || c === '"') {
      i = readString(text, i, tokens);
    } else if (DIGIT.test(c)) {
      i = readNumber(text, i, tokens);
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < text.length && IDENT_PART.test(text[j])) j++;
      tokens.push({ kind: "ident", text: text.slice(i, j), at: i + 1 });
      i = j;
    } else {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      if (!op) throw invalid(`unexpected character ${printable(c)} at column ${i + 1}`);
      tokens.push({ kind: "op", text: op, at: i + 1 });
      i += op.length;
    }
  }
  tokens.push({ kind: "end", text: "end of query", at: text.length + 1 });
  return tokens;
}

/** Allowed escapes, as documented: `\'`, `\"`, `\\` and `\uXXXX`. */
function readString(text: string, start: number, tokens: Token[]): number {
  const quote = text[start];
  let value = "";
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw invalid(`string starting at column ${start + 1} is never closed`);
    const c = text[i];
    if (c === quote) break;
    if (c !== "\\") {
      value += c;
      i++;
      continue;
    }
    const e = text[i + 1];
    if (e === "'" || e === '"' || e === "\\") {
      value += e;
      i += 2;
    } else if (e === "u" && /^[0-9A-Fa-f]{4}$/.test(text.slice(i + 2, i + 6))) {
      value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
      i += 6;
    } else {
      throw invalid(`unsupported escape '\\${e ?? ""}' at column ${i + 1} (allowed: \\' \\" \\\\ \\uXXXX)`);
    }
  }
  tokens.push({ kind: "string", text: value, at: start + 1 });
  return i + 1;
}

/** Decimal floats (`12`, `1.5`, `1e3`) and hexadecimal (`0x1F`). */
function readNumber(text: string, start: number, tokens: Token[]): number {
  const hex = /^0[xX][0-9A-Fa-f]+/.exec(text.slice(start, start + 20));
  const match = hex ?? /^[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(start));
  const literal = match![0];
  const end = start + literal.length;
  if (IDENT_PART.test(text[end] ?? "")) throw invalid(`malformed number at column ${start + 1}`);
  const value = hex ? parseInt(literal, 16) : Number(literal);
  if (!Number.isFinite(value)) throw invalid(`number out of range at column ${start + 1}`);
  tokens.push({ kind: "number", text: literal, value, at: start + 1 });
  return end;
}

/** Reads tokens with one token of lookahead; every "expected X, found Y" message is made here. */
export class TokenStream {
  protected i = 0;

  constructor(protected readonly tokens: Token[]) {}

  protected peek(): Token {
    return this.tokens[this.i];
  }

  protected next(): Token {
    const t = this.tokens[this.i];
    if (t.kind !== "end") this.i++;
    return t;
  }

  protected acceptWord(word: string): boolean {
    const t = this.peek();
    if (t.kind !== "ident" || t.text.toUpperCase() !== word) return false;
    this.i++;
    return true;
  }

  protected expectWord(word: string): void {
    if (!this.acceptWord(word)) throw this.unexpected(this.peek(), word);
  }

  protected acceptOp(op: string): boolean {
    const t = this.peek();
    if (t.kind !== "op" || t.text !== op) return false;
    this.i++;
    return true;
  }

  protected expectOp(op: string): void {
    if (!this.acceptOp(op)) throw this.unexpected(this.peek(), `'${op}'`);
  }

  protected unexpected(t: Token, wanted: string) {
    const found = t.kind === "end" ? "the end of the query" : `'${t.kind === "string" ? "string" : t.text}'`;
    return invalid(`expected ${wanted} at column ${t.at}, found ${found}`);
  }
}

/** Control and non-ASCII characters by code point, so an error line stays one readable line. */
function printable(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x20 || code > 0x7e ? `U+${code.toString(16).toUpperCase().padStart(4, "0")}` : `'${c}'`;
}

/** Every query error reads the same way, so a user can tell a query problem from any other 400. */
export function invalid(reason: string) {
  return badRequest(`The query is invalid: ${reason}.`);
}
