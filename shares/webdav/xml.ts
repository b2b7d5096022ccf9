/**
 * XML for the WebDAV layer: a bounded, namespace-aware parser for request
 * bodies (PROPFIND, PROPPATCH, LOCK), and text escaping for the responses
 * (which props.ts builds by concatenation, prefixes D and Z declared on the
 * root).
 *
 * Parsed elements carry their resolved namespace URI, their direct text and a
 * `raw` re-serialisation that declares every prefix it uses, so a dead
 * property value or a lock `owner` can be stored and echoed verbatim in
 * another document. Attributes are keyed by their local name when they have
 * no prefix and by Clark notation (`{uri}local`, e.g.
 * `{http://www.w3.org/XML/1998/namespace}lang`) when they do; namespace
 * declarations are not attributes. Comments and processing instructions are
 * dropped.
 *
 * Security considerations:
 * - Any `<!DOCTYPE` is refused, so there are no DTDs, no entity declarations,
 *   no external entities and no entity expansion (billion laughs); only the
 *   five predefined entities and character references are understood.
 * - The body is bounded before decoding (`maxBytes`), and the parser stops at
 *   10,000 elements or a nesting depth of 64. `raw` is computed lazily (and
 *   memoised), so a deep document cannot multiply its size in memory.
 * - Bodies are decoded as strict UTF-8 (invalid sequences are refused) and
 *   parsed under XML 1.0 rules whatever the declaration says.
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';

const MAX_ELEMENTS = 10_000;
const MAX_DEPTH = 64;

export type XmlErrorCode = 'ERR_XML' | 'ERR_XML_TOO_LARGE';

export class XmlError extends Error {
  constructor(
    readonly code: XmlErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'XmlError';
  }
}

export interface XmlElement {
  /** The resolved namespace URI, '' when the element has none. */
  ns: string;
  local: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The concatenation of the element's direct text and CDATA, unmodified. */
  text: string;
  /** The element as a self-contained XML fragment, every prefix it uses declared on it. */
  raw: string;
}

const ENTITY: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};
const TEXT_SPECIAL = /[&<>"']/g;
const HAS_TEXT_SPECIAL = /[&<>"']/;
const RAW_TEXT_SPECIAL = /[&<>\r]/g;
const ATTRIBUTE_SPECIAL = /[&<>"\t\n\r]/g;

const toEntity = (c: string): string => ENTITY[c]!;

/** Escapes `& < > " '` for element text or a double-quoted attribute value. */
export function escapeXml(s: string): string {
  return HAS_TEXT_SPECIAL.test(s) ? s.replace(TEXT_SPECIAL, toEntity) : s;
}

/** The first child element of `el` named `{ns}local`. */
export function childElement(el: XmlElement, ns: string, local: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.local === local);
}

// ---------------------------------------------------------------------------
// Parsing

/**
 * Parses a request body. Returns undefined for an empty or whitespace-only
 * body; throws XmlError otherwise when the body is not acceptable.
 */
export function parseXml(body: Buffer, opts: { maxBytes: number }): XmlElement | undefined {
  if (body.length > opts.maxBytes) throw new XmlError('ERR_XML_TOO_LARGE', `XML body is larger than ${opts.maxBytes} bytes`);
  let source: string;
  try {
    source = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch (err) {
    throw new XmlError('ERR_XML', 'XML body is not valid UTF-8', { cause: err });
  }
  if (/^[ \t\r\n]*$/.test(source)) return undefined;

  const parser = new SaxesParser({ xmlns: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
  const stack: ParsedElement[] = [];
  let root: ParsedElement | undefined;
  let elementCount = 0;

  const appendText = (text: string): void => {
    stack[stack.length - 1]?.appendText(text); // no element: whitespace around the root
  };

  parser.on('doctype', () => {
    throw new XmlError('ERR_XML', 'DOCTYPE declarations are not allowed');
  });
  parser.on('opentag', (tag) => {
    elementCount += 1;
    if (elementCount > MAX_ELEMENTS) throw new XmlError('ERR_XML', `XML body has more than ${MAX_ELEMENTS} elements`);
    if (stack.length >= MAX_DEPTH) throw new XmlError('ERR_XML', `XML body is nested deeper than ${MAX_DEPTH} levels`);
    const element = new ParsedElement(tag);
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = element;
    else parent.appendChild(element);
    stack.push(element);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  parser.on('text', appendText);
  parser.on('cdata', appendText);

  try {
    parser.write(source).close();
  } catch (err) {
    if (err instanceof XmlError) throw err;
    throw new XmlError('ERR_XML', `malformed XML: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return root;
}

/**
 * A parsed element. `raw` is a prototype getter computed on first use and
 * memoised, so it is not an own property (spread and JSON.stringify skip it).
 */
class ParsedElement implements XmlElement {
  readonly ns: string;
  readonly local: string;
  readonly attrs: Record<string, string> = {};
  readonly children: ParsedElement[] = [];
  text = '';
  /** The qualified name as written. */
  readonly #name: string;
  /** The attributes as written, namespace declarations included, in order. */
  readonly #attributes: { name: string; value: string }[] = [];
  /** Prefix to URI for the namespaces declared on this element ('' = default namespace). */
  readonly #declared: Readonly<Record<string, string>>;
  /** Prefix and URI pairs this element's name and attributes rely on. */
  readonly #uses: [prefix: string, uri: string][];
  /** Text and child elements in document order. */
  readonly #content: (string | ParsedElement)[] = [];
  #raw: string | undefined;

  constructor(tag: SaxesTagNS) {
    this.ns = tag.uri;
    this.local = tag.local;
    this.#name = tag.name;
    this.#declared = tag.ns;
    this.#uses = [[tag.prefix, tag.uri]];
    for (const attr of Object.values(tag.attributes)) {
      this.#attributes.push({ name: attr.name, value: attr.value });
      if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
      if (attr.prefix === '') this.attrs[attr.local] = attr.value;
      else {
        this.attrs[`{${attr.uri}}${attr.local}`] = attr.value;
        if (attr.prefix !== 'xml') this.#uses.push([attr.prefix, attr.uri]);
      }
    }
  }

  get raw(): string {
    this.#raw ??= this.#serialize();
    return this.#raw;
  }

  appendText(text: string): void {
    this.text += text;
    this.#content.push(text);
  }

  appendChild(child: ParsedElement): void {
    this.children.push(child);
    this.#content.push(child);
  }

  /**
   * Serialises this element, declaring on it the prefixes its subtree
   * inherits from outside; an unprefixed element without namespace gets
   * `xmlns=""`, so the fragment keeps its meaning inside any parent.
   */
  #serialize(): string {
    const inherited = new Map<string, string>();
    this.#collectInherited([], inherited);
    let declarations = '';
    for (const [prefix, uri] of inherited) {
      declarations += ` ${prefix === '' ? 'xmlns' : `xmlns:${prefix}`}="${escapeAttribute(uri)}"`;
    }
    const out: string[] = [];
    this.#write(declarations, out);
    return out.join('');
  }

  #collectInherited(declaredBetween: readonly Readonly<Record<string, string>>[], inherited: Map<string, string>): void {
    const declared = [...declaredBetween, this.#declared];
    for (const [prefix, uri] of this.#uses) {
      if (!inherited.has(prefix) && !declared.some((scope) => prefix in scope)) inherited.set(prefix, uri);
    }
    for (const child of this.children) child.#collectInherited(declared, inherited);
  }

  #write(declarations: string, out: string[]): void {
    out.push('<', this.#name, declarations);
    for (const { name, value } of this.#attributes) out.push(' ', name, '="', escapeAttribute(value), '"');
    if (this.#content.length === 0) {
      out.push('/>');
      return;
    }
    out.push('>');
    for (const item of this.#content) {
      if (typeof item === 'string') out.push(item.replace(RAW_TEXT_SPECIAL, toEntity));
      else item.#write('', out);
    }
    out.push('</', this.#name, '>');
  }
}

function escapeAttribute(s: string): string {
  return s.replace(ATTRIBUTE_SPECIAL, toEntity);
}
