/**
 * Streaming UFEBS intake for big PacketEPD files (input-formats §1, §2). Pure: the caller feeds the bytes.
 *
 * A file stays atomic while memory stays bounded, in two passes over the same bytes:
 *  - pass 1 (`mode: 'validate'`): encoding, well-formedness, DOCTYPE, caps, EDQuantity, packet Sum, ED108 sums
 *    and every record-level check; no payment is kept. Any file-level problem throws IntakeError at `end()`
 *    (or earlier), exactly as `parseUfebs` would for the same bytes.
 *  - pass 2 (`mode: 'emit'`): the same parse; payments are handed out in chunks (`take()`) for the caller to
 *    store inside one transaction, which commits only after the last chunk.
 * Only one ED subtree is held at a time; the whitespace and ED children of the packet are never accumulated.
 * Roots other than PacketEPD (single EDs, SigEnvelope) are small and throw NotStreamableError: parse them whole.
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';
import iconv from 'iconv-lite';
import { IntakeError, type Payment, type RecordProblem } from '../payment.ts';
import { EncodingTracker, hasUtf8Bom, looksUtf16or32, readXmlDeclEncoding } from '../encoding.ts';
import {
  DEFAULT_UFEBS_LIMITS, ED_NS, ENV_NS, PAYMENT_EDS, bigSum, checkEd108Sum, loc, processEd,
  type Ctx, type UfebsLimits, type XNode,
} from './parse.ts';

export class NotStreamableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotStreamableError';
  }
}

export interface StreamSummary {
  encoding: 'utf-8' | 'windows-1251';
  /** ED children of the packet */
  eds: number;
  payments: number;
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}

const ED_RE = /^ED\d{3}$/;
const DOCTYPE_RE = /<!DOCTYPE/i;

export class UfebsStreamParser {
  private parser = new SaxesParser({ xmlns: true, position: true });
  private stack: XNode[] = [];
  private root?: XNode;
  private ctx: Ctx = { where: '', container: 'PacketEPD/', payments: [], rejected: [], warnings: [] };
  private decoder?: { write(b: Buffer): string; end(): string | undefined };
  private encoding?: 'utf-8' | 'windows-1251';
  private label?: string;
  private bytes = new EncodingTracker();
  private head = true;
  private headBytes?: Buffer;
  private ending = false;
  private tail = '';
  private textLines = 1;
  private eds = 0;
  private sum = 0n;
  private emitted = 0;
  private limits: UfebsLimits;

  constructor(private mode: 'validate' | 'emit', limits: Partial<UfebsLimits> = {}) {
    this.limits = { ...DEFAULT_UFEBS_LIMITS, ...limits };
    const p = this.parser;
    const fail = (code: string, msg: string): never => {
      throw new IntakeError(code, loc(p.line, p.column), msg);
    };
    p.on('doctype', () => fail('DTD_FORBIDDEN', 'a DOCTYPE declaration is not allowed (no DTD, no entities)'));
    p.on('error', (e) => fail('NOT_WELL_FORMED', e.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '')));
    p.on('opentag', (tag: SaxesTagNS) => {
      const { maxDepth, maxAttributes } = this.limits;
      if (this.stack.length >= maxDepth) fail('NOT_WELL_FORMED', `nesting deeper than ${maxDepth} elements (cap)`);
      const attrs: Record<string, string> = {};
      let n = 0;
      for (const a of Object.values(tag.attributes)) {
        if (++n > maxAttributes) fail('NOT_WELL_FORMED', `more than ${maxAttributes} attributes on <${tag.name}> (cap)`);
        if (a.uri === '' && a.prefix === '') attrs[a.local] = a.value;
      }
      const node: XNode = { uri: tag.uri, local: tag.local, attrs, children: [], text: '', line: p.line };
      const parent = this.stack[this.stack.length - 1];
      if (parent) parent.children.push(node);
      else {
        if (this.root) fail('NOT_WELL_FORMED', 'more than one root element');
        if (node.uri !== ED_NS || node.local !== 'PacketEPD') {
          throw new NotStreamableError(`root {${node.uri}}${node.local} is not a PacketEPD: parse the file whole`);
        }
        this.root = node;
      }
      this.stack.push(node);
    });
    p.on('closetag', () => {
      const node = this.stack.pop()!;
      if (this.stack.length === 1 && node.uri === ED_NS && ED_RE.test(node.local)) {
        this.root!.children.pop(); // only one ED subtree is ever held
        this.onEd(node);
      }
    });
    const onText = (t: string) => {
      const cur = this.stack[this.stack.length - 1];
      if (!cur) return;
      if ((cur === this.root || cur.children.length) && !/\S/.test(t)) return; // indentation between elements
      const cap = cur.uri === ENV_NS && cur.local === 'Object' ? Math.ceil((this.limits.maxEnvelopeBytes * 4) / 3) + 1024 * 1024 : this.limits.maxTextChars;
      if (cur.text.length + t.length > cap) fail('NOT_WELL_FORMED', `text of <${cur.local}> exceeds ${cap} characters (cap)`);
      cur.text += t;
    };
    p.on('text', onText);
    p.on('cdata', onText);
  }

  private onEd(ed: XNode): void {
    this.eds++;
    const at = `PacketEPD (line ${this.root!.line})`;
    this.sum += bigSum([{ raw: ed.attrs.Sum, where: `${ed.local}[EDNo=${ed.attrs.EDNo ?? '?'}] (line ${ed.line})` }], 'packet EDs', at);
    if (ed.local === 'ED108') checkEd108Sum(ed, 'PacketEPD/');
    if (PAYMENT_EDS.has(ed.local)) {
      processEd(ed, this.ctx);
      if (this.mode === 'validate') {
        this.emitted += this.ctx.payments.length; // counted, not kept
        this.ctx.payments.length = 0;
      }
    } else {
      this.ctx.warnings.push({
        code: 'ED_SKIPPED',
        location: `PacketEPD/${ed.local}[EDNo=${ed.attrs.EDNo ?? '?'}] (line ${ed.line})`,
        message: `${ed.local} is not a payment candidate in this flow; skipped`,
      });
    }
  }

  /** Feeds the next bytes of the file. */
  write(chunk: Buffer): void {
    let b = chunk;
    if (this.head) {
      // the encoding is decided on the first bytes: wait for enough of them
      this.headBytes = this.headBytes ? Buffer.concat([this.headBytes, chunk]) : chunk;
      if (this.headBytes.length < 256 && !this.ending) return;
      b = this.headBytes;
      this.headBytes = undefined;
      this.head = false;
      const wide = looksUtf16or32(b);
      if (wide) throw new IntakeError('UNSUPPORTED_ENCODING', 'byte 0', `${wide} is not supported for UFEBS`);
      const bom = hasUtf8Bom(b);
      if (bom) b = b.subarray(3);
      this.label = readXmlDeclEncoding(b);
      if (bom && this.label?.trim().toLowerCase() === 'windows-1251') {
        this.ctx.warnings.push({ code: 'BOM_IGNORED', location: 'byte 0', message: `UTF-8 BOM ignored: the file declares "${this.label}"` });
      }
      const l = this.label?.trim().toLowerCase();
      if (this.label !== undefined && l !== 'utf-8' && l !== 'utf8' && l !== 'windows-1251') {
        throw new IntakeError('UNSUPPORTED_ENCODING', 'line 1', `declared encoding "${this.label}" is neither windows-1251 nor UTF-8`);
      }
      this.encoding = l === 'windows-1251' ? 'windows-1251' : 'utf-8';
      if (this.encoding === 'windows-1251') {
        const d = iconv.getDecoder('windows-1251');
        this.decoder = { write: (x) => d.write(x), end: () => d.end() };
      } else {
        const d = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
        this.decoder = {
          write: (x) => {
            try {
              return d.decode(x, { stream: true });
            } catch {
              throw this.notUtf8();
            }
          },
          end: () => {
            try {
              return d.decode();
            } catch {
              throw this.notUtf8();
            }
          },
        };
      }
    }
    if (this.encoding === 'windows-1251' && this.mode === 'validate') {
      // UTF-8 text under a windows-1251 label is refused (decided at the end, on the whole file)
      this.bytes.update(b);
    }
    this.feed(this.decoder!.write(b));
  }

  private notUtf8(): IntakeError {
    return new IntakeError('ENCODING_MISMATCH', 'line 1', `${this.label ? `declared "${this.label}"` : 'no encoding declared (UTF-8 implied)'} but the bytes are not valid UTF-8`);
  }

  private feed(text: string): void {
    if (!text) return;
    // a DOCTYPE anywhere (even in a comment or CDATA) rejects the file; the window covers chunk borders
    const win = this.tail + text;
    const dt = DOCTYPE_RE.exec(win);
    if (dt) {
      const before = win.slice(0, dt.index);
      const line = this.textLines + (before.match(/\n/g)?.length ?? 0) - (this.tail.match(/\n/g)?.length ?? 0);
      throw new IntakeError('DTD_FORBIDDEN', loc(line), 'a DOCTYPE declaration is not allowed (no DTD, no entities)');
    }
    this.textLines += text.match(/\n/g)?.length ?? 0;
    this.tail = win.slice(-8);
    for (let i = 0; i < text.length; ) {
      let end = Math.min(text.length, i + this.limits.chunkChars);
      const c = text.charCodeAt(end - 1);
      if (end < text.length && c >= 0xd800 && c <= 0xdbff) end--;
      this.parser.write(text.slice(i, end));
      i = end;
    }
  }

  /** Payments parsed so far and not taken yet (emit mode). */
  get pending(): number {
    return this.ctx.payments.length;
  }

  take(): Payment[] {
    const out = this.ctx.payments;
    this.ctx.payments = [];
    this.emitted += out.length;
    return out;
  }

  /** After the last byte: the file-level checks. Throws IntakeError when the file is to be rejected. */
  end(): StreamSummary {
    this.ending = true;
    if (this.head && this.headBytes?.length) this.write(Buffer.alloc(0));
    if (this.head) throw new IntakeError('EMPTY_FILE', 'byte 0', 'file has 0 bytes');
    this.feed(this.decoder!.end() ?? '');
    if (this.encoding === 'windows-1251' && this.mode === 'validate') {
      this.bytes.end();
      if (this.bytes.utf8Valid && !this.bytes.ascii) {
        throw new IntakeError('ENCODING_MISMATCH', 'line 1', `declared "${this.label}" but the bytes are UTF-8 text with non-ASCII characters`);
      }
    }
    this.parser.close();
    const root = this.root;
    if (!root) throw new IntakeError('NOT_WELL_FORMED', loc(this.parser.line, this.parser.column), 'no root element');
    const at = `PacketEPD (line ${root.line})`;
    const q = root.attrs.EDQuantity;
    if (q === undefined || !/^[1-9]\d*$/.test(q)) throw new IntakeError('COUNT_MISMATCH', at, `EDQuantity "${q ?? ''}" is not a positive integer`);
    if (Number(q) !== this.eds) throw new IntakeError('COUNT_MISMATCH', at, `EDQuantity ${q} ≠ ${this.eds} ED children`);
    const declared = bigSum([{ raw: root.attrs.Sum, where: 'PacketEPD' }], 'packet Sum', at);
    if (declared !== this.sum) throw new IntakeError('SUM_MISMATCH', at, `packet Sum ${declared} ≠ Σ ED Sum ${this.sum} over ${this.eds} EDs`);
    return {
      encoding: this.encoding!, eds: this.eds, payments: this.emitted + this.ctx.payments.length,
      rejected: this.ctx.rejected, warnings: this.ctx.warnings,
    };
  }
}
