/**
 * A small, read-only DOM built in one saxes pass: the subset of the W3C DOM that the SMEV transform, the
 * XMLDSig profile checks and the envelope / ГИС readers use (nodeType, nodeName, namespaceURI, localName,
 * prefix, attributes, getAttribute*, firstChild / nextSibling / parentNode, textContent, data, target,
 * documentElement, ownerDocument), plus the source offsets of every element.
 *
 * Why not @xmldom/xmldom: on a 600 KB ГИС packet an xmldom parse costs ~3× a saxes pass, and the bus and the
 * simulator parse every packet several times (benchmark profile, README "Performance"). saxes is also the
 * stricter parser: well-formedness and namespace errors, no DOCTYPE, no undefined entities, XML 1.0 line-end
 * (CR LF → LF) and attribute-value whitespace normalisation as the XML spec (and SMEV's own Java StAX stack) do.
 *
 * Semantics kept from xmldom where callers rely on them: `getAttribute*` of a missing attribute returns '';
 * namespace declarations are attributes (namespaceURI http://www.w3.org/2000/xmlns/); CDATA sections are
 * nodes of type 4; `textContent` skips comments and processing instructions.
 */
import { SaxesParser, type SaxesAttributeNS, type SaxesTagNS } from 'saxes';

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

/**
 * Parses `xml` (one string) into a LiteDOM document. Throws LiteParseError on a DOCTYPE, any well-formedness or
 * namespace error, an undefined entity, or a missing root element. The result is typed as a DOM Document for
 * the callers, which use only the subset above.
 */
export function parseLite(xml: string): Document {
  const doc = new LDocument();
  const parser = new SaxesParser({ xmlns: true, position: true });
  let error: LiteParseError | undefined;
  let current: LParent = doc;
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
    const attrs: LAttr[] = [];
    for (const name in tag.attributes) {
      const a = tag.attributes[name] as SaxesAttributeNS;
      attrs.push(new LAttr(a.name, a.prefix || null, a.local || a.name, a.uri || null, a.value));
    }
    const el = new LElement(tag.name, tag.prefix || null, tag.local, tag.uri || null, attrs, tagStart);
    el.ownerDocument = doc;
    current.appendChild(el);
    if (current === doc) doc.documentElement = el;
    current = el;
  });
  parser.on('closetag', () => {
    (current as LElement).endOffset = parser.position;
    current = current.parentNode ?? doc;
  });
  const leaf = (n: LNode): void => {
    n.ownerDocument = doc;
    current.appendChild(n);
  };
  parser.on('text', (t) => {
    // saxes reports whitespace between top-level nodes too; a document has no text nodes
    if (current !== doc) leaf(new LCharacterData(TEXT_NODE, t));
  });
  parser.on('cdata', (t) => leaf(new LCharacterData(CDATA_SECTION_NODE, t)));
  parser.on('comment', (t) => leaf(new LCharacterData(COMMENT_NODE, t)));
  parser.on('processinginstruction', (pi) => leaf(new LProcessingInstruction(pi.target, pi.body)));
  try {
    parser.write(xml).close();
  } catch (e) {
    fail((e as Error).message);
  }
  if (error) throw error;
  if (!doc.documentElement) throw new LiteParseError('no document element');
  return doc as unknown as Document;
}

/** Source offsets [start, end) of an element of a LiteDOM document (undefined for other DOMs). */
export function elementRange(el: Element): { start: number; end: number } | undefined {
  return el instanceof (LElement as unknown as typeof Element) && (el as unknown as LElement).endOffset >= 0
    ? { start: (el as unknown as LElement).startOffset, end: (el as unknown as LElement).endOffset }
    : undefined;
}
