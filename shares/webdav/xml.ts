/**
 * XML for the WebDAV layer: a bounded, namespace-aware parser for request
 * bodies (PROPFIND, PROPPATCH, LOCK) and a small string-building writer for
 * responses (multistatus, lockdiscovery, error bodies).
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
 * - The writer escapes all text; local names and namespace URIs given to it
 *   must come from the server's own constants or from a parsed element (whose
 *   names the parser has already validated). `rawFragment` inserts its input
 *   unchanged: pass only `raw` strings produced by `parseXml`.
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';

export const DAV_NAMESPACE = 'DAV:';
export const MICROSOFT_NAMESPACE = 'urn:schemas-microsoft-com:';

const MAX_ELEMENTS = 10_000;
const MAX_DEPTH = 64;
const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n';

export type XmlErrorCode = 'ERR_XML' | 'ERR_XML_TOO_LARGE' | 'ERR_XML_WRITER';

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
const RAW_TEXT_SPECIAL = /[&<>\r]/g;
const ATTRIBUTE_SPECIAL = /[&<>"\t\n\r]/g;

const toEntity = (c: string): string => ENTITY[c]!;

/** Escapes `& < > " '` for element text or a double-quoted attribute value. */
export function escapeXml(s: string): string {
  return s.replace(TEXT_SPECIAL, toEntity);
}

// ---------------------------------------------------------------------------
// Parsing

/** What the lazy `raw` serialisation needs to know about an element. */
interface SourceNode {
  readonly element: XmlElement;
  /** The qualified name as written. */
  readonly name: string;
  /** The attributes as written, namespace declarations included, in order. */
  readonly attributes: readonly { name: string; value: string }[];
  /** Prefixes declared on this element ('' = default namespace). */
  readonly declared: ReadonlySet<string>;
  /** Prefixes this element's name and attributes rely on, with their URIs. */
  readonly uses: ReadonlyMap<string, string>;
  /** Text and child elements in document order. */
  readonly content: (string | SourceNode)[];
  raw?: string;
}

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
  const stack: SourceNode[] = [];
  let root: SourceNode | undefined;
  let elementCount = 0;

  const appendText = (text: string): void => {
    const current = stack[stack.length - 1];
    if (current === undefined) return; // whitespace around the root element
    current.element.text += text;
    current.content.push(text);
  };

  parser.on('doctype', () => {
    throw new XmlError('ERR_XML', 'DOCTYPE declarations are not allowed');
  });
  parser.on('opentag', (tag) => {
    elementCount += 1;
    if (elementCount > MAX_ELEMENTS) throw new XmlError('ERR_XML', `XML body has more than ${MAX_ELEMENTS} elements`);
    if (stack.length >= MAX_DEPTH) throw new XmlError('ERR_XML', `XML body is nested deeper than ${MAX_DEPTH} levels`);
    const node = sourceNode(tag);
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = node;
    else {
      parent.element.children.push(node.element);
      parent.content.push(node);
    }
    stack.push(node);
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
  return root?.element;
}

function sourceNode(tag: SaxesTagNS): SourceNode {
  const attrs: Record<string, string> = {};
  const attributes: { name: string; value: string }[] = [];
  const uses = new Map<string, string>([[tag.prefix, tag.uri]]);
  for (const attr of Object.values(tag.attributes)) {
    attributes.push({ name: attr.name, value: attr.value });
    if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
    if (attr.prefix === '') attrs[attr.local] = attr.value;
    else {
      attrs[`{${attr.uri}}${attr.local}`] = attr.value;
      if (attr.prefix !== 'xml') uses.set(attr.prefix, attr.uri);
    }
  }
  const node: SourceNode = {
    element: {
      ns: tag.uri,
      local: tag.local,
      attrs,
      children: [],
      text: '',
      get raw(): string {
        node.raw ??= serialize(node);
        return node.raw;
      },
    },
    name: tag.name,
    attributes,
    declared: new Set(Object.keys(tag.ns)),
    uses,
    content: [],
  };
  return node;
}

/** Serialises a node, declaring on it the prefixes its subtree inherits from outside. */
function serialize(node: SourceNode): string {
  const inherited = new Map<string, string>();
  collectInherited(node, new Set(), inherited);
  let declarations = '';
  for (const [prefix, uri] of inherited) {
    if (prefix === '' && uri === '') continue; // no default namespace: nothing to declare
    declarations += ` ${prefix === '' ? 'xmlns' : `xmlns:${prefix}`}="${escapeAttribute(uri)}"`;
  }
  const out: string[] = [];
  writeNode(node, declarations, out);
  return out.join('');
}

function collectInherited(node: SourceNode, declaredAbove: ReadonlySet<string>, inherited: Map<string, string>): void {
  const declared = node.declared.size === 0 ? declaredAbove : new Set([...declaredAbove, ...node.declared]);
  for (const [prefix, uri] of node.uses) {
    if (!declared.has(prefix) && !inherited.has(prefix)) inherited.set(prefix, uri);
  }
  for (const child of node.content) if (typeof child !== 'string') collectInherited(child, declared, inherited);
}

function writeNode(node: SourceNode, declarations: string, out: string[]): void {
  out.push('<', node.name, declarations);
  for (const { name, value } of node.attributes) out.push(' ', name, '="', escapeAttribute(value), '"');
  if (node.content.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const child of node.content) {
    if (typeof child === 'string') out.push(child.replace(RAW_TEXT_SPECIAL, toEntity));
    else writeNode(child, '', out);
  }
  out.push('</', node.name, '>');
}

function escapeAttribute(s: string): string {
  return s.replace(ATTRIBUTE_SPECIAL, toEntity);
}

// ---------------------------------------------------------------------------
// Writing

const ROOT_DECLARATIONS = ` xmlns:D="${DAV_NAMESPACE}" xmlns:Z="${MICROSOFT_NAMESPACE}"`;
const ROOT_PREFIXES = new Map([
  [DAV_NAMESPACE, 'D'],
  [MICROSOFT_NAMESPACE, 'Z'],
]);

/**
 * Builds one XML document by string concatenation. `D` (DAV:) and `Z`
 * (urn:schemas-microsoft-com:) are declared on the root element; any other
 * namespace gets a document-wide prefix `ns0`, `ns1`… declared on the element
 * where it is first used within its scope. An element with namespace '' is
 * written unprefixed (no default namespace is ever declared).
 */
export class XmlWriter {
  readonly #parts: string[] = [XML_DECLARATION];
  readonly #open: { name: string; declaredNamespace: string | undefined }[] = [];
  readonly #prefixes = new Map<string, string>();
  readonly #inScope = new Set<string>();
  #rootDone = false;

  /** Opens an element; close it with `close()`. */
  open(ns: string, local: string): this {
    const { name, declaration, declaredNamespace } = this.#startTag(ns, local);
    this.#parts.push('<', name, declaration, '>');
    this.#open.push({ name, declaredNamespace });
    if (declaredNamespace !== undefined) this.#inScope.add(declaredNamespace);
    return this;
  }

  /** Writes a complete element: `<x/>` without text, `<x>text</x>` with (escaped) text. */
  leaf(ns: string, local: string, text?: string): this {
    const { name, declaration } = this.#startTag(ns, local);
    if (text === undefined) this.#parts.push('<', name, declaration, '/>');
    else this.#parts.push('<', name, declaration, '>', escapeXml(text), '</', name, '>');
    if (this.#open.length === 0) this.#rootDone = true;
    return this;
  }

  /** Closes the innermost open element. */
  close(): this {
    const element = this.#open.pop();
    if (element === undefined) throw new XmlError('ERR_XML_WRITER', 'close() without an open element');
    if (element.declaredNamespace !== undefined) this.#inScope.delete(element.declaredNamespace);
    this.#parts.push('</', element.name, '>');
    if (this.#open.length === 0) this.#rootDone = true;
    return this;
  }

  /** Inserts a self-contained fragment (an `XmlElement.raw`) inside the open element. */
  rawFragment(xml: string): this {
    if (this.#open.length === 0) throw new XmlError('ERR_XML_WRITER', 'rawFragment() outside the root element');
    this.#parts.push(xml);
    return this;
  }

  toString(): string {
    if (!this.#rootDone || this.#open.length > 0) throw new XmlError('ERR_XML_WRITER', 'the document is not complete');
    return this.#parts.join('');
  }

  toBuffer(): Buffer {
    return Buffer.from(this.toString(), 'utf8');
  }

  #startTag(ns: string, local: string): { name: string; declaration: string; declaredNamespace?: string } {
    const isRoot = this.#open.length === 0;
    if (isRoot && this.#rootDone) throw new XmlError('ERR_XML_WRITER', 'a document has only one root element');
    const rootDeclarations = isRoot ? ROOT_DECLARATIONS : '';
    if (ns === '') return { name: local, declaration: rootDeclarations };
    const fixed = ROOT_PREFIXES.get(ns);
    if (fixed !== undefined) return { name: `${fixed}:${local}`, declaration: rootDeclarations };
    let prefix = this.#prefixes.get(ns);
    if (prefix === undefined) {
      prefix = `ns${this.#prefixes.size}`;
      this.#prefixes.set(ns, prefix);
    }
    const name = `${prefix}:${local}`;
    if (this.#inScope.has(ns)) return { name, declaration: rootDeclarations };
    return { name, declaration: `${rootDeclarations} xmlns:${prefix}="${escapeAttribute(ns)}"`, declaredNamespace: ns };
  }
}
