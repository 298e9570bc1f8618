/**
 * Streaming CSV/TXT registry intake for big files (input-formats §4). Pure: the caller feeds the bytes.
 *
 * Same two passes as the PacketEPD stream (../ufebs/stream.ts):
 *  - pass 1 (`mode: 'validate'`): encoding, layout recognition, every row and the footer / totals
 *    (COUNT_MISMATCH, SUM_MISMATCH, CSV_MALFORMED …) and every record-level check; no payment is kept.
 *  - pass 2 (`mode: 'emit'`, given the layout and encoding pass 1 decided): payments handed out in chunks.
 * The rows go through the same record engine as the whole-file parser (CsvRecordParser in ./parse.ts); only
 * the lines of the record in hand and the first 64 KiB (for recognition) are held.
 *
 * Encoding: decided on the first 64 KiB as the whole-file rule would (BOM → UTF-8; non-ASCII valid UTF-8 →
 * UTF-8; else the layout's single-byte encoding). Pass 1 also applies the rule to the whole file; when the two
 * disagree (e.g. an ASCII head and UTF-8 further down) `end()` throws CsvEncodingRetry: run pass 1 again with
 * that encoding.
 */
import iconv from 'iconv-lite';
import { IntakeError, type Payment, type RecordProblem } from '../payment.ts';
import { EncodingTracker, assertNotEmpty, decodeCsv, hasUtf8Bom, looksUtf16or32, type SupportedEncoding } from '../encoding.ts';
import type { CsvLayout } from './layout.ts';
import { CsvRecordParser, normalise, recognises } from './parse.ts';
import { NotStreamableError } from '../ufebs/stream.ts';

export { NotStreamableError };

const HEAD_BYTES = 64 * 1024;

export class CsvEncodingRetry extends Error {
  constructor(readonly encoding: SupportedEncoding) {
    super(`the whole file decodes as ${encoding}: run the first pass again with it`);
    this.name = 'CsvEncodingRetry';
  }
}

export interface CsvStreamSummary {
  format: string;
  layout: string;
  encoding: SupportedEncoding;
  payments: number;
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}

export class CsvStreamParser {
  private head = true;
  private headBytes: Buffer[] = [];
  private headLen = 0;
  private ending = false;
  private bom = false;
  private layout?: CsvLayout;
  private encoding?: SupportedEncoding;
  private engine?: CsvRecordParser;
  private decoder?: { write(b: Buffer): string; end(): string };
  private cr = false;
  private bytes = new EncodingTracker();

  constructor(
    private layouts: CsvLayout[],
    private mode: 'validate' | 'emit',
    private opts: { layout?: string; encoding?: SupportedEncoding; headBytes?: number } = {},
  ) {}

  /** Feeds the next bytes of the file. Throws NotStreamableError when no layout recognises the head. */
  write(chunk: Buffer): void {
    let b = chunk;
    if (this.head) {
      this.headBytes.push(chunk);
      this.headLen += chunk.length;
      if ((this.headLen < (this.opts.headBytes ?? HEAD_BYTES) || !chunk.includes(0x0a)) && !this.ending) return; // at least a whole line
      b = Buffer.concat(this.headBytes);
      this.headBytes = [];
      this.head = false;
      b = this.start(b);
    }
    if (this.mode === 'validate') {
      this.bytes.update(b);
    }
    this.guarded(() => this.feed(this.decoder!.write(b)));
  }

  /**
   * A file-level problem found while the head's encoding guess already disagrees with the bytes read so far
   * (single-byte guess, non-ASCII valid UTF-8 since) may come from the wrong decoding: ask for a re-run.
   */
  private guarded<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof IntakeError && this.mode === 'validate' && !this.opts.encoding && this.layout?.encoding === 'auto'
        && this.encoding !== 'utf-8' && !this.bytes.ascii && this.bytes.utf8Valid) throw new CsvEncodingRetry('utf-8');
      throw e;
    }
  }

  /** Decides encoding and layout on the first bytes; returns the bytes to decode (BOM stripped). */
  private start(b: Buffer): Buffer {
    if (this.ending) assertNotEmpty(b);
    const wide = looksUtf16or32(b);
    if (wide) throw new IntakeError('UNSUPPORTED_ENCODING', 'byte 0', `${wide} is not supported`);
    this.bom = hasUtf8Bom(b);
    const body = this.bom ? b.subarray(3) : b;
    // recognition on whole lines only (an LF byte never sits inside a character in these encodings)
    const lf = body.lastIndexOf(0x0a);
    const cut = this.ending || lf < 0 ? b : b.subarray(0, (this.bom ? 3 : 0) + lf + 1);
    const candidates = this.opts.layout ? this.layouts.filter((l) => l.name === this.opts.layout) : this.layouts;
    for (const layout of candidates) {
      let text: string;
      let enc: SupportedEncoding;
      try {
        const d = decodeCsv(cut, layout.encoding, layout.singleByteEncoding);
        text = normalise(d.text);
        enc = d.encoding;
      } catch (e) {
        if (e instanceof IntakeError && (e.code === 'EMPTY_FILE' || e.code === 'UNSUPPORTED_ENCODING')) throw e;
        continue;
      }
      if (!recognises(text, layout)) continue;
      this.layout = layout;
      this.encoding = this.opts.encoding ?? enc;
      break;
    }
    if (!this.layout) throw new NotStreamableError('no CSV layout recognises the first lines: parse the file whole');
    if (this.encoding === 'utf-8') {
      const d = new TextDecoder('utf-8', { ignoreBOM: true });
      this.decoder = { write: (x) => d.decode(x, { stream: true }), end: () => d.decode() };
    } else {
      const d = iconv.getDecoder(this.encoding!);
      this.decoder = { write: (x) => d.write(x), end: () => d.end() ?? '' };
    }
    this.engine = new CsvRecordParser(this.layout, this.mode);
    return body;
  }

  private feed(text: string): void {
    if (!text) return;
    let t = (this.cr ? '\r' : '') + text;
    this.cr = t.endsWith('\r'); // a CR LF pair may straddle two chunks
    if (this.cr) t = t.slice(0, -1);
    this.engine!.write(normalise(t));
  }

  /** Payments parsed so far and not taken yet (emit mode). */
  get pending(): number {
    return this.engine?.pendingPayments ?? 0;
  }

  take(): Payment[] {
    return this.engine?.take() ?? [];
  }

  /** After the last byte: the file-level checks. Throws IntakeError when the file is to be rejected. */
  end(): CsvStreamSummary {
    this.ending = true;
    if (this.head) this.write(Buffer.alloc(0));
    this.guarded(() => {
      this.feed(this.decoder!.end());
      if (this.cr) {
        this.cr = false;
        this.engine!.write('\n');
      }
    });
    if (this.mode === 'validate') {
      this.bytes.end();
      const layout = this.layout!;
      const what = this.bom ? 'UTF-8 BOM' : layout.encoding === 'utf-8' ? 'layout says UTF-8' : undefined;
      if (what && !this.bytes.utf8Valid) throw new IntakeError('ENCODING_MISMATCH', 'byte 0', `${what} but the bytes are not valid UTF-8`);
      const decided: SupportedEncoding = this.bom || layout.encoding === 'utf-8' ? 'utf-8'
        : layout.encoding !== 'auto' ? layout.encoding
          : !this.bytes.ascii && this.bytes.utf8Valid ? 'utf-8' : layout.singleByteEncoding;
      if (decided !== this.encoding) throw new CsvEncodingRetry(decided);
    }
    const s = this.engine!.end();
    return { format: s.format, layout: this.layout!.name, encoding: this.encoding!, payments: s.payments, rejected: s.rejected, warnings: s.warnings };
  }
}
