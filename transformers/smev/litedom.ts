/**
 * A small, read-only DOM built in one pass of the strict fast parser (fastxml.ts): the subset of the W3C DOM that
 * the SMEV transform, the XMLDSig profile checks and the envelope / ГИС readers use (nodeType, nodeName,
 * namespaceURI, localName, prefix, attributes, getAttribute*, firstChild / nextSibling / parentNode, textContent,
 * data, target, documentElement, ownerDocument), plus the source offsets of every element.
 *
 * Why not @xmldom/xmldom: the bus and the simulator parse 0.5 MB packets all day, and xmldom took ~3× what this
 * does (README "Performance"); it was also laxer (unbound prefixes, text outside the root). Parsing follows the
 * XML spec: no DOCTYPE, no undefined entities, CR LF → LF, attribute-value whitespace normalised.
 *
 * Semantics kept from xmldom where callers rely on them: `getAttribute*` of a missing attribute returns '';
 * namespace declarations are attributes (namespaceURI http://www.w3.org/2000/xmlns/); CDATA sections are
 * nodes of type 4; `textContent` skips comments and processing instructions. `parseLiteSaxes` builds the same
 * tree from saxes events: the reference the fast parser is tested against.
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';
import { FastXmlError, parseFastXml, type FastAttr, type FastXmlHandler } from './fastxml.ts';

export const ELEMENT_NODE = 1;
export const ATTRIBUTE_NODE = 2;
export const TEXT_NODE = 3;
export const CDATA_SECTION_NODE = 4;
export const PROCESSING_INSTRUCTION_NODE = 7;
export const COMMENT_NODE = 8;
export const DOCUMENT_NODE = 9;

export class LiteParseError extends Error {
  constructor(message: string, readonly line?: number, readonly column?: number) {
    super(message);
    this.name = 'LiteParseError';
  }
}

abstract class LNode {
  abstract readonly nodeType: number;
  abstract readonly nodeName: string;
  parentNode: LParent | null = null;
  nextSibling: LNode | null = null;
  previousSibling: LNode | null = null;
  ownerDocument: LDocument | null = null;
  /** always null for leaves */
  firstChild: LNode | null = null;
  get textContent(): string | null {
    return null;
  }
}

abstract class LParent extends LNode {
  lastChild: LNode | null = null;

  appendChild(n: LNode): void {
    n.parentNode = this;
    n.previousSibling = this.lastChild;
    if (this.lastChild) this.lastChild.nextSibling = n;
    else this.firstChild = n;
    this.lastChild = n;
  }

  /** descendant elements by namespace and local name ('*' matches any), in document order */
  getElementsByTagNameNS(ns: string | null, local: string): LElement[] & { item(i: number): LElement | null } {
    const out: LElement[] = [];
    const walk = (p: LParent): void => {
      for (let n = p.firstChild; n; n = n.nextSibling) {
        if (n.nodeType !== ELEMENT_NODE) continue;
        const e = n as LElement;
        if ((ns === '*' || e.namespaceURI === (ns || null)) && (local === '*' || e.localName === local)) out.push(e);
        walk(e);
      }
    };
    walk(this);
    return Object.assign(out, { item: (i: number) => out[i] ?? null });
  }

  get childNodes(): LNode[] {
    const out: LNode[] = [];
    for (let n = this.firstChild; n; n = n.nextSibling) out.push(n);
    return out;
  }
}

export class LCharacterData extends LNode {
  constructor(readonly nodeType: typeof TEXT_NODE | typeof CDATA_SECTION_NODE | typeof COMMENT_NODE, public data: string) {
    super();
  }
  get nodeName(): string {
    return this.nodeType === TEXT_NODE ? '#text' : this.nodeType === CDATA_SECTION_NODE ? '#cdata-section' : '#comment';
  }
  get nodeValue(): string {
    return this.data;
  }
  override get textContent(): string {
    return this.data;
  }
}

export class LProcessingInstruction extends LNode {
  readonly nodeType = PROCESSING_INSTRUCTION_NODE;
  constructor(readonly target: string, readonly data: string) {
    super();
  }
  get nodeName(): string {
    return this.target;
  }
  override get textContent(): string {
    return this.data;
  }
}

export class LAttr {
  readonly nodeType = ATTRIBUTE_NODE;
  constructor(
    readonly name: string,
    readonly prefix: string | null,
    readonly localName: string,
    readonly namespaceURI: string | null,
    readonly value: string,
  ) {}
  get nodeName(): string {
    return this.name;
  }
  get nodeValue(): string {
    return this.value;
  }
}

class LAttrList {
  constructor(private readonly list: LAttr[]) {}
  get length(): number {
    return this.list.length;
  }
  item(i: number): LAttr | null {
    return this.list[i] ?? null;
  }
  [Symbol.iterator](): Iterator<LAttr> {
    return this.list[Symbol.iterator]();
  }
}

export class LElement extends LParent {
  readonly nodeType = ELEMENT_NODE;
  readonly attributes: LAttrList;
  /** offset of '<' of the start tag in the parsed string */
  readonly startOffset: number;
  /** offset just after the end tag (or the '/>' of an empty-element tag) */
  endOffset = -1;

  constructor(
    readonly nodeName: string,
    readonly prefix: string | null,
    readonly localName: string,
    readonly namespaceURI: string | null,
    private readonly attrs: LAttr[],
    startOffset: number,
  ) {
    super();
    this.attributes = new LAttrList(attrs);
    this.startOffset = startOffset;
  }

  get tagName(): string {
    return this.nodeName;
  }

  getAttributeNode(name: string): LAttr | null {
    for (const a of this.attrs) if (a.name === name) return a;
    return null;
  }

  getAttribute(name: string): string {
    return this.getAttributeNode(name)?.value ?? '';
  }

  hasAttribute(name: string): boolean {
    return this.getAttributeNode(name) !== null;
  }

  getAttributeNodeNS(ns: string | null, local: string): LAttr | null {
    const uri = ns || null;
    for (const a of this.attrs) if (a.namespaceURI === uri && a.localName === local) return a;
    return null;
  }

  getAttributeNS(ns: string | null, local: string): string {
    return this.getAttributeNodeNS(ns, local)?.value ?? '';
  }

  override get textContent(): string {
    let out = '';
    const walk = (p: LParent): void => {
      for (let n = p.firstChild; n; n = n.nextSibling) {
        if (n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) out += (n as LCharacterData).data;
        else if (n.nodeType === ELEMENT_NODE) walk(n as LElement);
      }
    };
    walk(this);
    return out;
  }
}

export class LDocument extends LParent {
  readonly nodeType = DOCUMENT_NODE;
  readonly nodeName = '#document';
  documentElement: LElement | null = null;
  override get textContent(): null {
    return null;
  }
}

/** Builds a LiteDOM document from parser events. */
class Builder implements FastXmlHandler {
  readonly doc = new LDocument();
  private current: LParent = this.doc;

  open(name: string, uri: string | null, local: string, prefix: string | null, attrs: FastAttr[], start: number): void {
    const list = attrs.map((a) => new LAttr(a.name, a.prefix, a.local, a.uri, a.value));
    const el = new LElement(name, prefix, local, uri, list, start);
    el.ownerDocument = this.doc;
    this.current.appendChild(el);
    if (this.current === this.doc) this.doc.documentElement = el;
    this.current = el;
  }

  close(end: number): void {
    (this.current as LElement).endOffset = end;
    this.current = this.current.parentNode ?? this.doc;
  }

  private leaf(n: LNode): void {
    n.ownerDocument = this.doc;
    this.current.appendChild(n);
  }

  text(t: string): void {
    // whitespace between top-level nodes is not part of the document
    if (this.current !== this.doc) this.leaf(new LCharacterData(TEXT_NODE, t));
  }

  cdata(t: string): void {
    this.leaf(new LCharacterData(CDATA_SECTION_NODE, t));
  }

  comment(t: string): void {
    this.leaf(new LCharacterData(COMMENT_NODE, t));
  }

  pi(target: string, data: string): void {
    this.leaf(new LProcessingInstruction(target, data));
  }
}

/**
 * Parses `xml` (one string) into a LiteDOM document with the fast strict parser (fastxml.ts). Throws LiteParseError
 * on a DOCTYPE, any well-formedness or namespace error, an undefined entity, or a missing root element. The result
 * is typed as a DOM Document for the callers, which use only the subset above.
 */
export function parseLite(xml: string): Document {
  const b = new Builder();
  try {
    parseFastXml(xml, b);
  } catch (e) {
    if (e instanceof FastXmlError) {
      throw new LiteParseError(/^\d+:\d+: DOCTYPE/.test(e.message) ? e.message.replace(/^\d+:\d+: /, '') : e.message, e.line, e.column);
    }
    throw e;
  }
  return b.doc as unknown as Document;
}

/** The same document built from saxes events: the reference the fast parser is tested against (test/fastxml.test.ts). */
export function parseLiteSaxes(xml: string): Document {
  const b = new Builder();
  const parser = new SaxesParser({ xmlns: true, position: true });
  let error: LiteParseError | undefined;
  let tagStart = 0;
  const fail = (message: string): void => {
    error ??= new LiteParseError(message, parser.line, parser.column);
  };
  parser.on('error', (e) => fail(e.message));
  parser.on('doctype', () => fail('DOCTYPE declarations are not allowed (no DTD processing / entity expansion)'));
  parser.on('opentagstart', () => {
    // saxes reports this once it has read the name and the character after it: the tag's '<' is the last one
    tagStart = xml.lastIndexOf('<', parser.position - 1);
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    const attrs: FastAttr[] = [];
    for (const name in tag.attributes) {
      const a = tag.attributes[name] as SaxesAttributeNS;
      attrs.push({ name: a.name, prefix: a.prefix || null, local: a.local || a.name, uri: a.uri || null, value: a.value });
    }
    b.open(tag.name, tag.uri || null, tag.local, tag.prefix || null, attrs, tagStart);
  });
  parser.on('closetag', () => b.close(parser.position));
  parser.on('text', (t) => b.text(t));
  parser.on('cdata', (t) => b.cdata(t));
  parser.on('comment', (t) => b.comment(t));
  parser.on('processinginstruction', (pi) => b.pi(pi.target, pi.body));
  try {
    parser.write(xml).close();
  } catch (e) {
    fail((e as Error).message);
  }
  if (error) throw error;
  if (!b.doc.documentElement) throw new LiteParseError('no document element');
  return b.doc as unknown as Document;
}

/** Source offsets [start, end) of an element of a LiteDOM document (undefined for other DOMs). */
export function elementRange(el: Element): { start: number; end: number } | undefined {
  return el instanceof (LElement as unknown as typeof Element) && (el as unknown as LElement).endOffset >= 0
    ? { start: (el as unknown as LElement).startOffset, end: (el as unknown as LElement).endOffset }
    : undefined;
}
