/**
 * Small XML helpers shared by the SMEV and ГИС transformers. Pure (no I/O).
 * Parsing (LiteDOM over the strict fast parser, litedom.ts / fastxml.ts) REFUSES any DOCTYPE (no entity expansion, no external resources).
 */
import { parseLite, elementRange } from './litedom.ts';

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
 * Parses an XML string into a (LiteDOM) Document: one pass of the fast parser. Throws XmlParseError on a DOCTYPE, on any
 * well-formedness or namespace error (mismatched tags, unbound prefixes, undefined entities, several roots,
 * text outside the root), or when there is no document element.
 */
export function parseXml(xml: string): Document {
  if (DOCTYPE_RE.test(xml)) throw new XmlParseError('DOCTYPE is not allowed');
  try {
    return parseLite(xml);
  } catch (e) {
    throw new XmlParseError(`malformed XML: ${(e as Error).message}`);
  }
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
 * The exact substring of `xml` that is the element `e` (start tag … end tag), from the source offsets that
 * parseXml (LiteDOM) records. Returns undefined for an element of another DOM.
 */
export function outerXmlSubstring(xml: string, e: Element): string | undefined {
  const r = elementRange(e);
  return r ? xml.slice(r.start, r.end) : undefined;
}
