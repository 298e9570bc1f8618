/**
 * Small XML helpers shared by the SMEV and ГИС transformers. Pure (no I/O).
 * Parsing uses @xmldom/xmldom and REFUSES any DOCTYPE (no entity expansion, no external resources).
 */
import { DOMParser } from '@xmldom/xmldom';
import { SaxesParser } from 'saxes';

export class XmlParseError extends Error {
  override name = 'XmlParseError';
}

// Characters not allowed in XML 1.0 (C0 controls except TAB/LF/CR, lone surrogates, U+FFFE/FFFF).
const INVALID_XML_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function assertXmlChars(s: string, what = 'text'): void {
  if (INVALID_XML_CHARS.test(s)) throw new XmlParseError(`${what} contains characters not allowed in XML 1.0`);
}

/** Escapes element text: & < > and CR (kept as &#xD; so it survives parsing). */
export function escapeText(s: string): string {
  assertXmlChars(s);
  return s.replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#xD;'));
}

/** Escapes an attribute value for use inside double quotes. */
export function escapeAttr(s: string): string {
  assertXmlChars(s, 'attribute');
  return s.replace(/[&<>"\t\n\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case '\t':
        return '&#x9;';
      case '\n':
        return '&#xA;';
      default:
        return '&#xD;';
    }
  });
}

const DOCTYPE_RE = /<!DOCTYPE/i;

/**
 * Strict, namespace-aware well-formedness check (saxes): mismatched tags, unbound prefixes,
 * undefined entities, several roots, text outside the root. Throws XmlParseError.
 */
export function checkWellFormed(xml: string): void {
  const p = new SaxesParser({ xmlns: true });
  let first: string | undefined;
  p.on('error', (e: Error) => {
    if (!first) first = e.message;
  });
  p.on('doctype', () => {
    if (!first) first = 'DOCTYPE is not allowed';
  });
  try {
    p.write(xml).close();
  } catch (e) {
    first ??= (e as Error).message;
  }
  if (first) throw new XmlParseError(`malformed XML: ${first}`);
}

/**
 * Parses an XML string into a DOM Document. Throws XmlParseError on a DOCTYPE, on any
 * well-formedness error, or when there is no document element.
 */
export function parseXml(xml: string): Document {
  if (DOCTYPE_RE.test(xml)) throw new XmlParseError('DOCTYPE is not allowed');
  checkWellFormed(xml);
  const problems: string[] = [];
  const parser = new DOMParser({
    locator: {},
    errorHandler: {
      warning: () => {},
      error: (m: string) => {
        problems.push(m);
      },
      fatalError: (m: string) => {
        problems.push(m);
      },
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(xml, 'text/xml') as unknown as Document;
  } catch (e) {
    throw new XmlParseError(`malformed XML: ${(e as Error).message}`);
  }
  if (problems.length) throw new XmlParseError(`malformed XML: ${problems[0]}`);
  if (!doc || !doc.documentElement) throw new XmlParseError('malformed XML: no root element');
  // belt and braces: DOCTYPE nodes must not survive
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 10) throw new XmlParseError('DOCTYPE is not allowed');
  }
  return doc;
}

export const ELEMENT_NODE = 1;

/** Element children of `parent` (any namespace). */
export function childElements(parent: Node): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n as Element);
  return out;
}

export type NsMatch = string | readonly string[] | ((ns: string | null) => boolean) | null;

function nsMatches(el: Element, ns: NsMatch): boolean {
  const uri = el.namespaceURI ?? null;
  if (ns === null) return uri === null || uri === '';
  if (typeof ns === 'string') return uri === ns;
  if (typeof ns === 'function') return ns(uri);
  return uri !== null && ns.includes(uri);
}

/** Element children with the given namespace (string, list, predicate, or null = no namespace) and local name. */
export function children(parent: Node, ns: NsMatch, local: string): Element[] {
  return childElements(parent).filter((e) => e.localName === local && nsMatches(e, ns));
}

export function child(parent: Node, ns: NsMatch, local: string): Element | undefined {
  return children(parent, ns, local)[0];
}

/** First child with the given local name in ANY namespace. */
export function childAnyNs(parent: Node, local: string): Element | undefined {
  return childElements(parent).find((e) => e.localName === local);
}

/** Follows a path of (ns, local) steps from `parent`. */
export function path(parent: Node, ns: NsMatch, ...locals: string[]): Element | undefined {
  let cur: Node | undefined = parent;
  for (const l of locals) {
    if (!cur) return undefined;
    cur = child(cur, ns, l);
  }
  return cur as Element | undefined;
}

export function text(el: Element | undefined | null): string | undefined {
  if (!el) return undefined;
  return el.textContent ?? '';
}

/** Descendant elements (document order) matching ns + local name. */
export function descendants(root: Node, ns: NsMatch, local: string): Element[] {
  const out: Element[] = [];
  const walk = (n: Node) => {
    for (const c of childElements(n)) {
      if (c.localName === local && nsMatches(c, ns)) out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Serialises a namespace declaration list: { '': uri, ns2: uri } → ` xmlns="…" xmlns:ns2="…"`. */
export function nsDecls(decls: Record<string, string>): string {
  return Object.entries(decls)
    .map(([p, uri]) => (p ? ` xmlns:${p}="${escapeAttr(uri)}"` : ` xmlns="${escapeAttr(uri)}"`))
    .join('');
}

/** `<tag>escaped text</tag>` */
export function el(tag: string, value: string | number | boolean): string {
  return `<${tag}>${escapeText(String(value))}</${tag}>`;
}

/**
 * Returns the exact source substring of an element given its 1-based start line/column from the
 * xmldom locator — fallback-free helper used by `outerXmlSubstring`.
 */
function offsetOf(xml: string, line: number, col: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = xml.indexOf('\n', off);
    if (nl < 0) return -1;
    off = nl + 1;
  }
  return off + col - 1;
}

/**
 * The exact substring of `xml` that is the element `e` (start tag … end tag), using the xmldom locator
 * positions (parse with parseXml, which enables the locator). Returns undefined if positions are unknown.
 */
export function outerXmlSubstring(xml: string, e: Element): string | undefined {
  const ln = (e as unknown as { lineNumber?: number }).lineNumber;
  const cn = (e as unknown as { columnNumber?: number }).columnNumber;
  if (!ln || !cn) return undefined;
  let start = offsetOf(xml, ln, cn);
  if (start < 0) return undefined;
  // xmldom reports the column of '<' (1-based); be tolerant of an off-by-one
  if (xml[start] !== '<') {
    if (xml[start - 1] === '<') start -= 1;
    else return undefined;
  }
  const end = findElementEnd(xml, start);
  return end < 0 ? undefined : xml.slice(start, end);
}

/** Given the offset of an element's '<', returns the offset just after its matching end. */
export function findElementEnd(xml: string, start: number): number {
  let depth = 0;
  let i = start;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) return -1;
    if (xml.startsWith('<!--', lt)) {
      const e = xml.indexOf('-->', lt + 4);
      if (e < 0) return -1;
      i = e + 3;
      continue;
    }
    if (xml.startsWith('<![CDATA[', lt)) {
      const e = xml.indexOf(']]>', lt + 9);
      if (e < 0) return -1;
      i = e + 3;
      continue;
    }
    if (xml.startsWith('<?', lt)) {
      const e = xml.indexOf('?>', lt + 2);
      if (e < 0) return -1;
      i = e + 2;
      continue;
    }
    // find end of tag, honouring quoted attribute values
    let j = lt + 1;
    let quote = '';
    for (; j < n; j++) {
      const c = xml[j];
      if (quote) {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '>') break;
    }
    if (j >= n) return -1;
    const closing = xml[lt + 1] === '/';
    const selfClosing = xml[j - 1] === '/';
    if (closing) depth--;
    else if (!selfClosing) depth++;
    i = j + 1;
    if (depth === 0) return i;
  }
  return -1;
}
