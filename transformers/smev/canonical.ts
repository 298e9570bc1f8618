/**
 * Writers for XML that the bus builds itself, element by element.
 *
 * `SmevCanonicalWriter` writes an element directly in the form the SMEV transform
 * (`urn://smev-gov-ru/xmldsig/transform`, transform.ts) gives it: prefixes ns1, ns2, … numbered in order of first
 * use, each declaration on the element that first needs it and dropped with it, unqualified attributes sorted
 * by name after the declarations, no empty-element tags, text escaped as Woodstox does. Its output is a fixed
 * point of the transform — `smevTransform(parse(out)) === out` (test/smev-canonical.test.ts) — so the bus signs
 * an outgoing packet by hashing the text it sends, without parsing its own 0.5 MB of XML again
 * (README "Performance").
 *
 * `PrefixedXmlWriter` writes the same elements with fixed prefixes (the readable form used where nothing is
 * signed). Both implement `XmlSink`, so a document builder (transformers/gis/notification.ts) is written once.
 */
import { escapeAttr, escapeText, SmevTransformError } from './transform.ts';
import { assertXmlChars, escapeAttr as escapeAttrPlain, escapeText as escapeTextPlain } from './xml.ts';

export interface XmlSink {
  /** opens an element; attributes are unqualified (no namespace) */
  open(uri: string, local: string, attrs?: Record<string, string>): void;
  /** text content of the element open now (consecutive calls are one text block) */
  text(t: string): void;
  close(): void;
  /** open + text + close */
  leaf(uri: string, local: string, t: string): void;
}

const NAME_RE = /^[A-Za-z_][\w.-]*$/;

function checkName(n: string, what: string): void {
  if (!NAME_RE.test(n)) throw new SmevTransformError(`${what} "${n}" is not an NCName this writer accepts`);
}

/** Java `String.trim().isEmpty()`, as the transform decides which text blocks to drop. */
function isBlank(t: string): boolean {
  for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) > 0x20) return false;
  return true;
}

export class SmevCanonicalWriter implements XmlSink {
  private out = '';
  private counter = 1;
  /** per open element: its qualified name and the bindings it declared */
  private readonly open_: { qname: string; bound: { uri: string; prefix: string }[] }[] = [];
  private pending = '';

  private lookup(uri: string): string | undefined {
    for (let i = this.open_.length - 1; i >= 0; i--) {
      for (const b of this.open_[i]!.bound) if (b.uri === uri) return b.prefix;
    }
    return undefined;
  }

  private flushText(): void {
    if (this.pending === '') return;
    // the transform drops a whitespace-only block; a writer that kept it would send what it does not sign
    if (isBlank(this.pending)) throw new SmevTransformError('whitespace-only text cannot be written (the SMEV transform drops it)');
    assertXmlChars(this.pending);
    this.out += escapeText(this.pending);
    this.pending = '';
  }

  open(uri: string, local: string, attrs?: Record<string, string>): void {
    if (!uri) throw new SmevTransformError(`element ${local} needs a namespace (the SMEV transform requires one)`);
    checkName(local, 'element name');
    this.flushText();
    const bound: { uri: string; prefix: string }[] = [];
    let prefix = this.lookup(uri);
    if (prefix === undefined) {
      prefix = `ns${this.counter++}`;
      bound.push({ uri, prefix });
    }
    const qname = `${prefix}:${local}`;
    let tag = `<${qname}`;
    for (const b of bound) tag += ` xmlns:${b.prefix}="${escapeAttr(b.uri)}"`;
    if (attrs) {
      const names = Object.keys(attrs).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const n of names) {
        checkName(n, 'attribute name');
        if (n === 'xmlns' || n.startsWith('xml')) throw new SmevTransformError(`attribute ${n} is reserved`);
        assertXmlChars(attrs[n]!, 'attribute');
        tag += ` ${n}="${escapeAttr(attrs[n]!)}"`;
      }
    }
    this.out += tag + '>';
    this.open_.push({ qname, bound });
  }

  text(t: string): void {
    if (!this.open_.length) throw new SmevTransformError('text outside an element');
    this.pending += t;
  }

  close(): void {
    const e = this.open_.pop();
    if (!e) throw new SmevTransformError('close() without an open element');
    this.flushText();
    this.out += `</${e.qname}>`;
  }

  leaf(uri: string, local: string, t: string): void {
    this.open(uri, local);
    this.text(t);
    this.close();
  }

  /** Length of the output so far (between elements: marks where an element starts or ends). */
  get position(): number {
    if (this.pending !== '') throw new SmevTransformError('position inside a text block');
    return this.out.length;
  }

  /** The finished element (every element closed). */
  toString(): string {
    if (this.open_.length) throw new SmevTransformError(`${this.open_.length} element(s) still open`);
    return this.out;
  }
}

/**
 * Fixed prefixes: `prefixes` maps each namespace to its prefix ('' = default namespace); the first element
 * declares them all.
 */
export class PrefixedXmlWriter implements XmlSink {
  private out = '';
  private readonly stack: string[] = [];

  constructor(private readonly prefixes: Map<string, string>) {}

  private qname(uri: string, local: string): string {
    const p = this.prefixes.get(uri);
    if (p === undefined) throw new Error(`no prefix for namespace ${uri}`);
    return p ? `${p}:${local}` : local;
  }

  open(uri: string, local: string, attrs?: Record<string, string>): void {
    const q = this.qname(uri, local);
    let tag = `<${q}`;
    if (!this.stack.length && !this.out) {
      for (const [u, p] of this.prefixes) tag += p ? ` xmlns:${p}="${escapeAttrPlain(u)}"` : ` xmlns="${escapeAttrPlain(u)}"`;
    }
    if (attrs) for (const n of Object.keys(attrs)) tag += ` ${n}="${escapeAttrPlain(attrs[n]!)}"`;
    this.out += tag + '>';
    this.stack.push(q);
  }

  text(t: string): void {
    this.out += escapeTextPlain(t);
  }

  close(): void {
    this.out += `</${this.stack.pop()}>`;
  }

  leaf(uri: string, local: string, t: string): void {
    const q = this.qname(uri, local);
    this.out += `<${q}>${escapeTextPlain(t)}</${q}>`;
  }

  toString(): string {
    return this.out;
  }
}
