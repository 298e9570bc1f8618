/**
 * SMEV 3 transform `urn://smev-gov-ru/xmldsig/transform` (smev3.md §8).
 *
 * DOM-based port of the reference `ru.voskhod.crypto.impl.SmevTransformSpi`, with the output
 * escaping of the Woodstox StAX writer (BufferingXmlWriter), which is what SMEV itself uses.
 * Applying it directly to a DOM element is equivalent to running the reference on the
 * exc-c14n octets of that element (§8.5 rule 8): comments vanish without splitting text,
 * processing instructions split text blocks, CDATA is plain text, ancestor/unused namespace
 * declarations are irrelevant because every declaration is regenerated.
 */
import { LiteParseError, parseLite } from './litedom.ts';

export const SMEV_TRANSFORM_URI = 'urn://smev-gov-ru/xmldsig/transform';

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;
const ENTITY_REFERENCE_NODE = 5;
const PROCESSING_INSTRUCTION_NODE = 7;
const COMMENT_NODE = 8;

/** Woodstox BaseStreamWriter.MIN_ARRAYCOPY: shorter text goes through the String path. */
const MIN_ARRAYCOPY = 12;
/** Woodstox DEFAULT_COPYBUFFER_LEN: longer text is written in chunks of this many UTF-16 units. */
const COPYBUFFER_LEN = 512;

export class SmevTransformError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmevTransformError';
  }
}

export interface SmevTransformOptions {
  /**
   * Treat comments as text-block separators (like processing instructions). Only needed when the
   * preceding transform was a "#WithComments" c14n variant, whose output still contains comments;
   * by default (exc-c14n without comments) comments are skipped without splitting the text.
   */
  commentsSplitText?: boolean;
  /** A node (typically an enveloped ds:Signature) to leave out entirely, as the enveloped-signature transform does. */
  exclude?: Node | null;
}

interface Binding {
  prefix: string;
  uri: string;
}

function describe(el: Element): string {
  return `<${el.nodeName}>`;
}

/** Woodstox text escaping for one decoded text block (§8.4). */
export function escapeText(t: string): string {
  if (!NEEDS_TEXT_ESCAPE.test(t)) return t; // nothing to escape or refuse: the common case, copied as is
  if (t.length < MIN_ARRAYCOPY) return escapeTextShort(t);
  let out = '';
  for (let start = 0; start < t.length; start += COPYBUFFER_LEN) {
    out += escapeTextChunk(t.slice(start, start + COPYBUFFER_LEN));
  }
  return out;
}

function otherCharEntity(c: number): string | null {
  if (c < 0x20) {
    if (c === 0x09 || c === 0x0a) return null;
    if (c === 0x0d) return '&#xd;';
    throw new SmevTransformError(`illegal control character U+${c.toString(16).padStart(4, '0')} in text`);
  }
  if ((c >= 0x7f && c <= 0x9f) || c === 0xfffe || c === 0xffff) return `&#x${c.toString(16)};`;
  return null;
}

/** String path (`writeCharacters(String)`): `>` escaped only at index 0 or after `]`. */
function escapeTextShort(t: string): string {
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    const c = t.charCodeAt(i);
    if (ch === '<') out += '&lt;';
    else if (ch === '&') out += '&amp;';
    else if (ch === '>') out += i === 0 || t[i - 1] === ']' ? '&gt;' : '>';
    else {
      const ent = otherCharEntity(c);
      out += ent ?? ch;
    }
  }
  return out;
}

/** char[] path: `>` escaped at chunk start, after an escaped char, or after `]`. */
function escapeTextChunk(t: string): string {
  let out = '';
  let prevEscaped = false;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    const c = t.charCodeAt(i);
    let ent: string | null;
    if (ch === '<') ent = '&lt;';
    else if (ch === '&') ent = '&amp;';
    else if (ch === '>') ent = i === 0 || prevEscaped || t[i - 1] === ']' ? '&gt;' : null;
    else ent = otherCharEntity(c);
    if (ent !== null) {
      out += ent;
      prevEscaped = true;
    } else {
      out += ch;
      prevEscaped = false;
    }
  }
  return out;
}

/** Characters the text / attribute escapers act on (escape, or refuse); a string without any is output unchanged. */
const NEEDS_TEXT_ESCAPE = /[\x00-\x1f<&>\x7f-\x9f\ufffe\uffff]/;
const NEEDS_ATTR_ESCAPE = /[\x00-\x1f<&>"\x7f-\x9f\ufffe\uffff]/;

/** Woodstox attribute-value escaping (quote char `"`), also used for namespace URIs (§8.4). */
export function escapeAttr(v: string): string {
  if (!NEEDS_ATTR_ESCAPE.test(v)) return v;
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const ch = v[i]!;
    switch (ch) {
      case '&':
        out += '&amp;';
        break;
      case '<':
        out += '&lt;';
        break;
      case '"':
        out += '&quot;';
        break;
      case '\t':
        out += '&#x9;';
        break;
      case '\n':
        out += '&#xa;';
        break;
      case '\r':
        out += '&#xd;';
        break;
      default: {
        const c = v.charCodeAt(i);
        if (c < 0x20) {
          throw new SmevTransformError(`illegal control character U+${c.toString(16).padStart(4, '0')} in attribute value`);
        }
        out += ch;
      }
    }
  }
  return out;
}

/** Java `String.trim().isEmpty()`: every char ≤ U+0020. */
function isBlank(t: string): boolean {
  for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) > 0x20) return false;
  return true;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface AttrInfo {
  uri: string; // '' = unqualified
  local: string;
  value: string;
}

function compareAttrs(a: AttrInfo, b: AttrInfo): number {
  const aq = a.uri !== '';
  const bq = b.uri !== '';
  if (aq && bq) return cmp(a.uri, b.uri) || cmp(a.local, b.local);
  if (!aq && !bq) return cmp(a.local, b.local);
  return aq ? -1 : 1;
}

class Transformer {
  /** bindings made by the open elements, innermost last (an element's own are popped with it) */
  private readonly bound: Binding[] = [];
  private counter = 1;
  private out = '';

  constructor(private readonly opts: SmevTransformOptions) {}

  run(el: Element): string {
    this.element(el);
    return this.out;
  }

  /** the prefix bound to `uri` in scope, or a new one (its declaration is added to `decls`) */
  private bind(uri: string, decls: { s: string }): string {
    for (let i = this.bound.length - 1; i >= 0; i--) if (this.bound[i]!.uri === uri) return this.bound[i]!.prefix;
    const prefix = `ns${this.counter++}`;
    this.bound.push({ prefix, uri });
    decls.s += ` xmlns:${prefix}="${escapeAttr(uri)}"`;
    return prefix;
  }

  private element(el: Element): void {
    const mark = this.bound.length;
    const uri = el.namespaceURI ?? '';
    const local = el.localName ?? el.nodeName;
    if (uri === '') {
      throw new SmevTransformError(
        `unsupported input: element ${describe(el)} is in no namespace (the SMEV transform requires every element to be namespace-qualified)`,
      );
    }
    const decls = { s: '' };
    const prefix = this.bind(uri, decls);

    let attrText = '';
    const nodeAttrs = el.attributes;
    if (nodeAttrs.length) {
      let attrs: AttrInfo[] | undefined;
      for (let i = 0; i < nodeAttrs.length; i++) {
        const a = nodeAttrs.item(i)!;
        const aUri = a.namespaceURI ?? '';
        if (aUri === XMLNS_NS || a.name === 'xmlns' || a.name.startsWith('xmlns:')) continue;
        if (aUri === XML_NS || a.name.startsWith('xml:')) {
          throw new SmevTransformError(
            `unsupported input: attribute ${a.name} on element ${describe(el)} is in the XML namespace (xml:* attributes cannot be re-prefixed by the SMEV transform)`,
          );
        }
        (attrs ??= []).push({ uri: aUri, local: a.localName ?? a.name, value: a.value });
      }
      if (attrs) {
        if (attrs.length > 1) attrs.sort(compareAttrs);
        for (const a of attrs) {
          attrText += a.uri !== '' ? ` ${this.bind(a.uri, decls)}:${a.local}="${escapeAttr(a.value)}"` : ` ${a.local}="${escapeAttr(a.value)}"`;
        }
      }
    }
    const qname = `${prefix}:${local}`;
    this.out += `<${qname}${decls.s}${attrText}>`;

    // text between markup is one block: adjacent text / CDATA (and comments unless commentsSplitText) merge
    let buf = '';
    const exclude = this.opts.exclude;
    for (let n = el.firstChild; n; n = n.nextSibling) {
      const type = n.nodeType;
      if (type === TEXT_NODE || type === CDATA_SECTION_NODE) {
        buf += (n as CharacterData).data;
        continue;
      }
      if (exclude && n === exclude) continue;
      if (type === COMMENT_NODE && !this.opts.commentsSplitText) continue;
      if (type === ELEMENT_NODE || type === PROCESSING_INSTRUCTION_NODE || type === COMMENT_NODE) {
        if (buf !== '') {
          if (!isBlank(buf)) this.out += escapeText(buf);
          buf = '';
        }
        if (type === ELEMENT_NODE) this.element(n as Element);
      } else if (type === ENTITY_REFERENCE_NODE) {
        throw new SmevTransformError(`unsupported input: unexpanded entity reference &${n.nodeName}; inside ${describe(el)}`);
      }
    }
    if (buf !== '' && !isBlank(buf)) this.out += escapeText(buf);
    this.out += `</${qname}>`;
    this.bound.length = mark;
  }
}

/** Apply the SMEV transform to a DOM element (xmldom). Returns the output as a JS string (hash it as UTF-8). */
export function smevTransform(el: Element, opts: SmevTransformOptions = {}): string {
  if (!el || el.nodeType !== ELEMENT_NODE) throw new SmevTransformError('smevTransform expects an Element');
  return new Transformer(opts).run(el);
}

// ---------------------------------------------------------------------------------------------
// Parsing helpers (shared with the signature module)

/**
 * Parse an XML document (LiteDOM over the strict fast parser, transformers/smev/litedom.ts), refusing DOCTYPEs and failing on any
 * well-formedness or namespace error.
 */
export function parseXmlStrict(xml: string): Document {
  try {
    return parseLite(xml);
  } catch (e) {
    if (e instanceof LiteParseError && /^DOCTYPE/.test(e.message)) throw new SmevTransformError(e.message);
    throw new SmevTransformError(`XML parse error: ${(e as Error).message}`);
  }
}

const ID_ATTRS = ['Id', 'ID', 'id'];

/** All elements carrying an `Id` (or `ID` / `id`) attribute equal to `id`, in document order. */
export function findElementsById(root: Document | Element, id: string): Element[] {
  const found: Element[] = [];
  const start: Element | null =
    root.nodeType === 9 ? (root as Document).documentElement : (root as Element);
  const walk = (el: Element): void => {
    for (const name of ID_ATTRS) {
      const a = el.getAttributeNode(name);
      if (a && !a.namespaceURI && a.value === id) {
        found.push(el);
        break;
      }
    }
    for (let c = el.firstChild; c; c = c.nextSibling) if (c.nodeType === ELEMENT_NODE) walk(c as Element);
  };
  if (start) walk(start);
  return found;
}

/**
 * Parse `xml` (no DTD), pick the element whose `Id` equals `id` (or the document element) and return
 * the SMEV transform output (exc-c14n semantics are implied by the DOM-based rules).
 */
export function smevTransformXml(xml: string, id?: string): string {
  const doc = parseXmlStrict(xml);
  let el: Element;
  if (id === undefined) {
    el = doc.documentElement;
  } else {
    const found = findElementsById(doc, id);
    if (found.length === 0) throw new SmevTransformError(`no element with Id="${id}"`);
    if (found.length > 1) throw new SmevTransformError(`several elements carry Id="${id}"`);
    el = found[0]!;
  }
  return smevTransform(el);
}
