/**
 * The `If` request header (RFC 4918 §10.4): parsing and evaluation.
 *
 *   If = 1*No-tag-list / 1*Tagged-list
 *   Tagged-list = Resource-Tag 1*List          Resource-Tag = "<" Simple-ref ">"
 *   List = "(" 1*Condition ")"                 Condition = ["Not"] (State-token / "[" entity-tag "]")
 *
 * Whitespace (space, tab, CR, LF) is accepted anywhere between productions,
 * and "Not" in any case (ABNF literals are case-insensitive). Entity tags are
 * kept as written, with their quotes and any `W/` prefix, and compared as
 * strings with the resource's current etag in the same form.
 *
 * Security considerations: the parser is a single linear scan (no regular
 * expression backtracking over the header). Lock tokens are not secrets
 * (lockdiscovery shows them to anyone who may read the resource), so the If
 * header is concurrency control, not authorisation; access to the namespace
 * is decided before it is evaluated.
 */

export class IfHeaderError extends Error {
  readonly code = 'ERR_IF_HEADER';
  constructor(message: string) {
    super(message);
    this.name = 'IfHeaderError';
  }
}

export interface IfCondition {
  not: boolean;
  /** A state token (an absolute URI), without `<>`. */
  token?: string;
  /** An entity tag as written: `"x"` or `W/"x"`. */
  etag?: string;
}

export interface IfList {
  /** The resource tag as written, without `<>`; absent for an untagged list (the request URL). */
  resource?: string;
  conditions: IfCondition[];
}

/** The state of a resource named in an If header, or undefined when there is no such resource. */
export type IfResourceState = { etag: string | undefined; lockTokens: string[] } | undefined;

const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** Parses an If header value; throws IfHeaderError when it is malformed. */
export function parseIfHeader(value: string): IfList[] {
  return new IfHeaderParser(value).parse();
}

class IfHeaderParser {
  #i = 0;
  constructor(readonly value: string) {}

  parse(): IfList[] {
    const lists: IfList[] = [];
    let tagged: boolean | undefined;
    let resource: string | undefined;
    let tagAwaitingList = false;
    for (this.#skipWhitespace(); this.#i < this.value.length; this.#skipWhitespace()) {
      const c = this.value[this.#i];
      if (c === '<') {
        if (tagged === false) this.#fail('a resource tag after an untagged list');
        if (tagAwaitingList) this.#fail('a resource tag without a list');
        tagged = true;
        resource = this.#codedUrl();
        tagAwaitingList = true;
      } else if (c === '(') {
        tagged ??= false;
        const conditions = this.#list();
        lists.push(resource === undefined ? { conditions } : { resource, conditions });
        tagAwaitingList = false;
      } else {
        this.#fail(`unexpected ${JSON.stringify(c)}`);
      }
    }
    if (tagAwaitingList) this.#fail('a resource tag without a list');
    if (lists.length === 0) this.#fail('no list');
    return lists;
  }

  #list(): IfCondition[] {
    this.#i += 1; // "("
    const conditions: IfCondition[] = [];
    for (;;) {
      this.#skipWhitespace();
      const c = this.value[this.#i];
      if (c === undefined) this.#fail('unterminated list');
      if (c === ')') {
        if (conditions.length === 0) this.#fail('empty list');
        this.#i += 1;
        return conditions;
      }
      conditions.push(this.#condition());
    }
  }

  #condition(): IfCondition {
    let not = false;
    if (this.value.slice(this.#i, this.#i + 3).toLowerCase() === 'not') {
      not = true;
      this.#i += 3;
      this.#skipWhitespace();
    }
    const c = this.value[this.#i];
    if (c === '<') {
      const token = this.#codedUrl();
      if (!ABSOLUTE_URI.test(token)) this.#fail('a state token is not an absolute URI');
      return { not, token };
    }
    if (c === '[') return { not, etag: this.#entityTag() };
    return this.#fail(c === undefined ? 'unterminated list' : `unexpected ${JSON.stringify(c)} in a list`);
  }

  /** "<" URI ">", returning the URI with surrounding whitespace removed. */
  #codedUrl(): string {
    const end = this.value.indexOf('>', this.#i + 1);
    if (end === -1) this.#fail('unbalanced "<"');
    const uri = this.value.slice(this.#i + 1, end).trim();
    if (uri === '' || /[\s<]/.test(uri)) this.#fail('an invalid URI in "<>"');
    this.#i = end + 1;
    return uri;
  }

  /** "[" ["W/"] DQUOTE *etagc DQUOTE "]", returning the entity tag as written. */
  #entityTag(): string {
    this.#i += 1; // "["
    this.#skipWhitespace();
    const start = this.#i;
    if (this.value.startsWith('W/', this.#i)) this.#i += 2;
    if (this.value[this.#i] !== '"') this.#fail('an entity tag must be quoted');
    const close = this.value.indexOf('"', this.#i + 1);
    if (close === -1) this.#fail('unbalanced quote in an entity tag');
    const etag = this.value.slice(start, close + 1);
    this.#i = close + 1;
    this.#skipWhitespace();
    if (this.value[this.#i] !== ']') this.#fail('unbalanced "["');
    this.#i += 1;
    return etag;
  }

  #skipWhitespace(): void {
    while (this.#i < this.value.length && ' \t\r\n'.includes(this.value[this.#i]!)) this.#i += 1;
  }

  #fail(reason: string): never {
    throw new IfHeaderError(`malformed If header: ${reason} at offset ${this.#i}`);
  }
}

/**
 * True when at least one list matches. A list matches when all of its
 * conditions hold: a token condition when the token is one of the resource's
 * current lock tokens, an etag condition when it equals the resource's
 * current etag; "Not" inverts. `resolve(undefined)` is the request URL;
 * a tagged list's resource is passed as written. A resource that `resolve`
 * does not know makes every condition on it false (true when negated).
 */
export function evaluateIf(lists: IfList[], resolve: (resource: string | undefined) => IfResourceState): boolean {
  const states = new Map<string | undefined, IfResourceState>();
  const stateOf = (resource: string | undefined): IfResourceState => {
    if (!states.has(resource)) states.set(resource, resolve(resource));
    return states.get(resource);
  };
  return lists.some((list) => {
    const state = stateOf(list.resource);
    return list.conditions.every((condition) => holds(condition, state) !== condition.not);
  });
}

function holds(condition: IfCondition, state: IfResourceState): boolean {
  if (state === undefined) return false;
  if (condition.token !== undefined) return state.lockTokens.includes(condition.token);
  return state.etag !== undefined && state.etag === condition.etag;
}

/** Every state token in the header (tagged or not, negated or not), without `<>`, each once. */
export function submittedTokens(lists: IfList[]): string[] {
  const tokens = new Set<string>();
  for (const list of lists) for (const condition of list.conditions) if (condition.token !== undefined) tokens.add(condition.token);
  return [...tokens];
}
