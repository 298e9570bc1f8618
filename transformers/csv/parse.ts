/**
 * CSV/TXT registry intake driven by layout profiles (config/csv-layouts.yaml, schema in ./layout.ts).
 * Pure: bytes in, ParsedFile out. Money is converted to kopecks on the STRING (input-formats §4.7).
 *
 * Reconciliation choice (documented): totals are reconciled on the RAW data rows, i.e. before record-level
 * validation. The count is the number of data rows including rows later rejected (bad amount, account, INN,
 * date). The sum is Σ of every data-row amount that can be read as money under the layout's number format,
 * leniently (a zero or a negative amount is still a number and is counted; it is rejected as a payment
 * afterwards). A row whose amount is not a number at all (`1,5E+03`, `abc`) contributes nothing; if the footer
 * then disagrees, the file is rejected with SUM_MISMATCH and the message names those rows.
 *
 * One record engine (CsvRecordParser) serves the whole-file parser (one piece of text) and the streaming one
 * (./stream.ts, many pieces): rows are classified, reconciled and validated as they come. `#KEY value` header
 * lines must therefore come before the data rows (a header after data is CSV_MALFORMED).
 */
import { Parser } from 'csv-parse';
import { decodeCsv } from '../encoding.ts';
import { IntakeError, type ParsedFile, type Payment, type PaymentHints, type RecordProblem } from '../payment.ts';
import type { CsvLayout, FieldRef, MoneyFormat } from './layout.ts';
import { checkAccount, isValidInn, isValidIsoDate } from '../classify/checks.ts';

/** Rubles/kopecks text → integer kopecks, on the string. Returns undefined when not a valid amount. */
export function moneyToKopecks(text: string, fmt: MoneyFormat, allowSign = false): number | undefined {
  let s = text.replace(/[ \u00A0\u202F]/g, '');
  let neg = false;
  if (allowSign && s.startsWith('-')) {
    neg = true;
    s = s.slice(1);
  }
  let kop: bigint;
  if (fmt.unit === 'kopecks') {
    if (!/^\d+$/.test(s)) return undefined;
    kop = BigInt(s);
  } else {
    const sep = fmt.decimal === 'any' ? '[.,]' : fmt.decimal === '.' ? '\\.' : ',';
    const m = new RegExp(`^(\\d+)(?:${sep}(\\d{1,2}))?$`).exec(s);
    if (!m) return undefined;
    kop = BigInt(m[1]!) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
  }
  if (kop > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return neg ? -Number(kop) : Number(kop);
}

/** Date text per the layout format → YYYY-MM-DD, or undefined. */
export function parseLayoutDate(text: string, fmt: CsvLayout['dateFormat']): string | undefined {
  let m: RegExpExecArray | null;
  let iso: string | undefined;
  if (fmt === 'dd/mm/yyyy' && (m = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(text))) iso = `${m[3]}-${m[2]}-${m[1]}`;
  else if (fmt === 'dd.mm.yyyy' && (m = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(text))) iso = `${m[3]}-${m[2]}-${m[1]}`;
  else if (fmt === 'yyyy-mm-dd' && /^\d{4}-\d{2}-\d{2}$/.test(text)) iso = text;
  return iso && isValidIsoDate(iso) ? iso : undefined;
}

function splitLines(text: string): string[] {
  return text.split('\n');
}

function firstNonEmptyLine(text: string): string | undefined {
  for (const l of splitLines(text)) if (l.trim() !== '') return l;
  return undefined;
}

function simpleSplit(line: string, layout: CsvLayout): string[] {
  const parts = line.split(layout.delimiter);
  if (layout.trailingDelimiter && parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts.map((p) => (layout.quoting === 'rfc4180' ? p.trim().replace(/^"(.*)"$/, '$1').replace(/""/g, '"') : p.trim()));
}

function isPrefixLine(line: string, layout: CsvLayout): boolean {
  const p = layout.meta.prefixLines?.prefix;
  return p !== undefined && line.startsWith(p);
}

/** Does this layout recognise the (decoded, LF-normalised, BOM-free) text? */
export function recognises(text: string, layout: CsvLayout): boolean {
  const first = firstNonEmptyLine(text);
  if (first === undefined) return false;
  if (layout.recognise.firstLine !== undefined && !new RegExp(layout.recognise.firstLine, 'u').test(first)) return false;
  if (layout.recognise.headerRow) {
    const headerLine = splitLines(text).find((l) => l.trim() !== '' && !isPrefixLine(l, layout) && !(layout.meta.taggedLine && new RegExp(layout.meta.taggedLine.match, 'u').test(l)));
    if (headerLine === undefined) return false;
    const names = simpleSplit(headerLine, layout);
    const want = layout.recognise.headerRow;
    if (names.length !== want.length || names.some((n, i) => n !== want[i])) return false;
  }
  return true;
}

interface Row {
  fields: string[];
  line: number;
  endLine: number;
  rawLine: string;
}

export function normalise(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** The incremental csv-parse core (the same state machine `csv-parse/sync` runs over a whole buffer). */
interface CsvApi {
  parse(buf: Buffer | undefined, end: boolean, push: (r: unknown) => void, close: () => void): Error | undefined;
}

export interface CsvSummary {
  format: string;
  /** data payments found (kept or not) */
  payments: number;
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}

/**
 * The per-line / per-record engine of a CSV layout, fed decoded, LF-normalised, BOM-free text in pieces.
 * Shared by the whole-file parser (one piece) and the streaming one (many): rows are classified, counted,
 * reconciled and validated as they come; only the lines of the record in hand are kept.
 * `mode: 'validate'` counts payments without keeping them; `mode: 'emit'` keeps them until `take()`.
 */
export class CsvRecordParser {
  private meta = new Map<string, string>();
  private metaLine = new Map<string, number>();
  readonly warnings: RecordProblem[] = [];
  private rejected: RecordProblem[] = [];
  private payments: Payment[] = [];
  private emitted = 0;
  private api: CsvApi;
  private pending: string[] = []; // complete lines not consumed by a record yet
  private firstPending = 1; // line number of pending[0]
  private partial = '';
  private lines = 0; // complete lines seen
  private lastEnd = 0;
  private skipped = 0;
  private ready: Row[] = [];
  private commentChar?: string;
  private taggedRe?: RegExp;
  private totalsRe?: RegExp;
  private header?: string[];
  private totals?: { row: Row; groups: Record<string, string | undefined> };
  private dataSeen = false;
  private rowCount = 0;
  private rawSum = 0;
  private unreadable: number[] = [];

  constructor(private layout: CsvLayout, private mode: 'validate' | 'emit') {
    const usePrefix = layout.meta.prefixLines?.prefix;
    this.commentChar = usePrefix && usePrefix.length === 1 ? usePrefix : undefined;
    this.taggedRe = layout.meta.taggedLine ? new RegExp(layout.meta.taggedLine.match, 'u') : undefined;
    this.totalsRe = layout.totals ? new RegExp(layout.totals.line, 'u') : undefined;
    const parser = new Parser({
      delimiter: layout.delimiter,
      quote: layout.quoting === 'rfc4180' ? '"' : false,
      relax_quotes: layout.relaxQuotes,
      relax_column_count: true,
      bom: true,
      max_record_size: layout.maxRecordSize,
      skip_empty_lines: true,
      record_delimiter: '\n',
      ...(this.commentChar ? { comment: this.commentChar, comment_no_infix: true } : {}),
      on_record: (record: string[], context) => {
        // the runtime context carries the Info counters (comment_lines, empty_lines, lines)
        const ctx = context as unknown as { comment_lines: number; empty_lines: number; lines: number };
        const nowSkipped = ctx.comment_lines + ctx.empty_lines;
        const start = this.lastEnd + 1 + (nowSkipped - this.skipped);
        this.skipped = nowSkipped;
        this.lastEnd = ctx.lines;
        const fields = [...record];
        if (layout.trailingDelimiter && fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
        const rawLine = this.pending.slice(start - this.firstPending, ctx.lines - this.firstPending + 1).join('\n');
        this.ready.push({ fields, line: start, endLine: ctx.lines, rawLine });
        return record;
      },
    });
    this.api = (parser as unknown as { api: CsvApi }).api;
  }

  /** Next piece of the decoded text. Throws IntakeError on file-level problems found so far. */
  write(text: string): void {
    if (!text) return;
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop()!;
    for (const l of parts) this.addLine(l);
    this.run(Buffer.from(text, 'utf8'), false);
  }

  private addLine(l: string): void {
    this.lines++;
    this.pending.push(l);
    const pl = this.layout.meta.prefixLines;
    if (pl && l.startsWith(pl.prefix)) {
      // `#KEY value` lines (only at column 1) — csv-parse drops them as comments (comment_no_infix keeps `кв. #12`)
      const body = l.slice(pl.prefix.length);
      const at = body.indexOf(pl.separator);
      const key = (at < 0 ? body : body.slice(0, at)).trim();
      const value = at < 0 ? '' : body.slice(at + pl.separator.length).trim();
      if (this.meta.has(key)) throw new IntakeError('CSV_MALFORMED', `line ${this.lines}`, `header ${pl.prefix}${key} appears twice`);
      if (this.dataSeen) throw new IntakeError('CSV_MALFORMED', `line ${this.lines}`, `header ${pl.prefix}${key} after the data rows (headers come first)`);
      this.meta.set(key, value);
      this.metaLine.set(key, this.lines);
    }
  }

  private run(buf: Buffer | undefined, end: boolean): void {
    const err = this.api.parse(buf, end, () => {}, () => {});
    if (err !== undefined) this.csvError(err);
    const rows = this.ready;
    this.ready = [];
    for (const row of rows) this.onRow(row);
    // drop the lines every record so far is done with (the rest may belong to the record in hand)
    const drop = this.lastEnd - this.firstPending + 1;
    if (drop > 0) {
      this.pending.splice(0, drop);
      this.firstPending += drop;
    }
  }

  private csvError(e: unknown): never {
    const err = e as { code?: string; message?: string; lines?: number };
    const { layout, commentChar } = this;
    const lineAt = (n: number) => this.pending[n - this.firstPending];
    let open = this.lastEnd + 1;
    while (open < this.firstPending + this.pending.length && (lineAt(open)!.trim() === '' || (commentChar && lineAt(open)!.startsWith(commentChar)))) open++;
    // a quote problem belongs to the record it starts in, not to the line where the parser noticed it
    const atRecord = err.code === 'CSV_QUOTE_NOT_CLOSED' || err.code === 'CSV_MAX_RECORD_SIZE' || err.code === 'CSV_INVALID_CLOSING_QUOTE';
    const where = atRecord ? `line ${open}` : `line ${err.lines ?? open}`;
    const what =
      err.code === 'CSV_QUOTE_NOT_CLOSED'
        ? `unclosed quote in the record starting at line ${open} (the parser reached the end of the file at line ${err.lines ?? '?'})`
        : err.code === 'CSV_MAX_RECORD_SIZE'
          ? `record starting at line ${open} exceeds ${layout.maxRecordSize} characters (unclosed quote?)`
          : err.code === 'CSV_INVALID_CLOSING_QUOTE'
            ? `a quoted field in the record starting at line ${open} is not closed properly: its closing quote must be followed by the delimiter "${layout.delimiter}" or the end of the line (the parser noticed at line ${err.lines ?? '?'}; a quote inside a field is written twice)`
            : `${err.code ?? 'error'}: ${err.message ?? String(e)}`;
    throw new IntakeError('CSV_MALFORMED', where, what);
  }

  private get(ref: FieldRef | undefined, row: Row | undefined): string | undefined {
    if (ref === undefined) return undefined;
    let v: string | undefined;
    if (ref.startsWith('meta:')) v = this.meta.get(ref.slice(5));
    else if (!row) v = undefined;
    else if (ref.startsWith('col:')) v = row.fields[Number(ref.slice(4)) - 1];
    else if (ref.startsWith('header:')) {
      const i = this.header ? this.header.indexOf(ref.slice(7)) : -1;
      v = i >= 0 ? row.fields[i] : undefined;
    } else if (ref.startsWith('tag:')) {
      const key = ref.slice(4) + this.layout.data.tagSeparator;
      const f = row.fields.slice(this.layout.data.tagsFrom - 1).find((x) => x.startsWith(key));
      v = f === undefined ? undefined : f.slice(key.length);
    }
    v = v?.trim();
    return v === '' ? undefined : v;
  }

  private onRow(row: Row): void {
    const { layout } = this;
    if (this.taggedRe && this.taggedRe.test(row.rawLine)) {
      if (this.dataSeen || this.meta.size) throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, 'the tagged header line must come first and only once');
      const sep = layout.meta.taggedLine!.separator;
      for (const f of row.fields) {
        const at = f.indexOf(sep);
        if (at > 0) {
          this.meta.set(f.slice(0, at).trim(), f.slice(at + sep.length).trim());
          this.metaLine.set(f.slice(0, at).trim(), row.line);
        }
      }
      return;
    }
    if (layout.recognise.headerRow && !this.header) {
      const names = row.fields.map((f) => f.trim());
      const want = layout.recognise.headerRow;
      if (names.length !== want.length || names.some((n, i) => n !== want[i])) {
        throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, `column header row does not match layout ${layout.name}`);
      }
      this.header = names;
      return;
    }
    if (this.totalsRe && this.totalsRe.test(row.rawLine)) {
      if (this.totals) throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, `second totals line (first at line ${this.totals.row.line})`);
      this.totals = { row, groups: { ...(this.totalsRe.exec(row.rawLine)!.groups ?? {}) } };
      return;
    }
    if (this.totals) throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, `data after the totals line (line ${this.totals.row.line})`);
    if (row.fields.every((f) => f.trim() === '')) return;
    this.dataSeen = true;

    // Row classification + column counts (file-level: a data row with the wrong number of fields is CSV_MALFORMED).
    const hasTag = (tag: string) => row.fields.slice(layout.data.tagsFrom - 1).some((f) => f.startsWith(tag + layout.data.tagSeparator));
    if (layout.data.requireTag && !hasTag(layout.data.requireTag)) {
      this.warnings.push({ code: 'LINE_SKIPPED', location: `line ${row.line}`, message: `no ${layout.data.requireTag}${layout.data.tagSeparator} tag: not a data line` });
      return;
    }
    const n = row.fields.length;
    if (layout.data.fieldCount !== undefined && n !== layout.data.fieldCount) {
      throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, `data row has ${n} fields, layout ${layout.name} expects ${layout.data.fieldCount}`);
    }
    if (layout.data.minFields !== undefined && n < layout.data.minFields) {
      throw new IntakeError('CSV_MALFORMED', `line ${row.line}`, `data row has ${n} fields, layout ${layout.name} expects at least ${layout.data.minFields}`);
    }
    this.rowCount++;
    // Reconciliation on the raw rows (see the header comment).
    const k = moneyToKopecks(this.get(layout.fields.amount, row) ?? '', layout.amountFormat, true);
    if (k === undefined) this.unreadable.push(row.line);
    else this.rawSum += k;
    this.record(row);
  }

  /** Record-level validation: a payment, or a rejected record (the rest of the file still flows). */
  private record(row: Row): void {
    const { layout } = this;
    const get = (ref: FieldRef | undefined) => this.get(ref, row);
    const f = layout.fields;
    const location = `line ${row.line}`;
    const op = get(f.operationNo);
    const ref = op ? `op ${op}` : undefined;
    const problems: { code: string; rule: string }[] = [];
    const amountText = get(f.amount) ?? '';
    const amount = moneyToKopecks(amountText, layout.amountFormat);
    if (amount === undefined || amount < 1) problems.push({ code: 'INVALID_SUM', rule: `amount "${amountText}" is not a positive amount in ${layout.amountFormat.unit} (${layout.amountFormat.decimal} decimal)` });
    const dateText = get(f.date) ?? '';
    const date = parseLayoutDate(dateText, layout.dateFormat);
    if (!date) problems.push({ code: 'INVALID_DATE', rule: `date "${dateText}" is not a valid ${layout.dateFormat} date` });
    if (!op) problems.push({ code: 'INVALID_RECORD', rule: 'operation number is empty' });
    const bic = get(f.payeeBic);
    const account = get(f.payeeAccount);
    if (!bic || !account) problems.push({ code: 'INVALID_ACCOUNT', rule: 'payee BIC and account are required' });
    else {
      const r = checkAccount(account, bic, 'client');
      if (!r.ok) problems.push({ code: 'INVALID_ACCOUNT', rule: `payee ${r.reason}` });
    }
    const inn = get(f.payeeInn);
    if (inn !== undefined && inn !== '0' && !isValidInn(inn)) problems.push({ code: 'INVALID_INN', rule: `payee INN "${inn}" fails the check digits (10 or 12 digits)` });
    if (problems.length) {
      this.rejected.push({ code: problems[0]!.code, location, ...(ref ? { ref } : {}), message: problems.map((p) => p.rule).join('; ') });
      return;
    }
    if (this.mode === 'validate') {
      this.emitted++; // counted, not kept
      return;
    }
    const hints: PaymentHints = {};
    const setHint = (k: keyof PaymentHints, ref2: FieldRef | undefined) => {
      const v = get(ref2);
      if (v !== undefined) hints[k] = v;
    };
    setHint('accountNumber', f.accountNumber);
    setHint('els', f.els);
    setHint('serviceId', f.serviceId);
    setHint('paymentDocumentId', f.paymentDocumentId);
    setHint('idField', f.idField);
    setHint('period', f.period);
    setHint('payerAddress', f.address);
    setHint('fiasHouseGuid', f.fiasHouseGuid);
    const payerName = get(f.payerName);
    const payeeName = get(f.payeeName);
    const kpp = get(f.payeeKpp);
    this.payments.push({
      sourceKey: `CSV:${layout.name}:${inn && inn !== '0' ? inn : `${bic}/${account}`}:${op}`,
      ref: `op ${op}`,
      location,
      kind: 'CSV',
      amountKop: amount!,
      date: date!,
      purpose: get(f.purpose) ?? '',
      payer: payerName ? { name: payerName } : {},
      payee: { bic: bic!, account: account!, ...(inn ? { inn } : {}), ...(kpp ? { kpp } : {}), ...(payeeName ? { name: payeeName } : {}) },
      hints,
    });
  }

  /** Payments parsed so far and not taken yet (emit mode). */
  get pendingPayments(): number {
    return this.payments.length;
  }

  take(): Payment[] {
    const out = this.payments;
    this.payments = [];
    this.emitted += out.length;
    return out;
  }

  /** After the last piece: the footer / totals reconciliation. Throws IntakeError when the file is to be rejected. */
  end(): CsvSummary {
    const { layout } = this;
    const totalLines = this.lines + 1; // as text.split('\n').length: LFs + 1
    if (this.partial !== '') {
      this.addLine(this.partial); // the last line, without LF
      this.partial = '';
    }
    this.run(undefined, true);
    const rows = this.rowCount;
    const rawSum = this.rawSum;
    const totals = this.totals;
    const get = (ref: FieldRef | undefined, row: Row | undefined) => this.get(ref, row);
    const note = this.unreadable.length ? ` (amounts not readable on line(s) ${this.unreadable.join(', ')} are not counted)` : '';
    if (layout.totals?.required && !totals) throw new IntakeError('CSV_MALFORMED', `line ${totalLines}`, `layout ${layout.name} requires a totals line, none found`);
    if (totals && layout.totals) {
      const fmt = layout.totals.format ?? layout.amountFormat;
      const at = `line ${totals.row.line}`;
      const countText = totals.groups.count ?? get(layout.totals.countField, totals.row);
      const sumText = totals.groups.sum ?? get(layout.totals.sumField, totals.row);
      if (countText !== undefined) {
        if (!/^\d+$/.test(countText.trim())) throw new IntakeError('CSV_MALFORMED', at, `totals count "${countText}" is not a number`);
        if (Number(countText) !== rows) throw new IntakeError('COUNT_MISMATCH', at, `totals count ${countText} ≠ ${rows} data rows`);
      }
      if (sumText !== undefined) {
        const s = moneyToKopecks(sumText.trim(), fmt, true);
        if (s === undefined) throw new IntakeError('CSV_MALFORMED', at, `totals sum "${sumText}" is not an amount`);
        if (s !== rawSum) throw new IntakeError('SUM_MISMATCH', at, `totals sum ${sumText} (${s} kop) ≠ Σ rows ${rawSum} kop${note}`);
      }
    }
    if (layout.metaTotals) {
      const { meta, metaLine } = this;
      const fmt = layout.metaTotals.format ?? layout.amountFormat;
      const { count, sum } = layout.metaTotals;
      if (count !== undefined && meta.has(count)) {
        const c = meta.get(count)!;
        if (!/^\d+$/.test(c) || Number(c) !== rows) throw new IntakeError('COUNT_MISMATCH', `line ${metaLine.get(count)}`, `${count} ${c} ≠ ${rows} data rows`);
      }
      if (sum !== undefined && meta.has(sum)) {
        const t = meta.get(sum)!;
        const s = moneyToKopecks(t, fmt, true);
        if (s === undefined) throw new IntakeError('CSV_MALFORMED', `line ${metaLine.get(sum)}`, `${sum} "${t}" is not an amount`);
        if (s !== rawSum) throw new IntakeError('SUM_MISMATCH', `line ${metaLine.get(sum)}`, `${sum} ${t} (${s} kop) ≠ Σ rows ${rawSum} kop${note}`);
      }
    }
    return { format: `CSV:${layout.name}`, payments: this.emitted + this.payments.length, rejected: this.rejected, warnings: this.warnings };
  }
}

/** Parse a file known to be in `layout`: the record engine run over the whole decoded text. Throws IntakeError on file-level problems. */
export function parseWithLayout(bytes: Buffer, fileName: string, layout: CsvLayout): ParsedFile {
  void fileName;
  const decoded = decodeCsv(bytes, layout.encoding, layout.singleByteEncoding);
  const engine = new CsvRecordParser(layout, 'emit');
  engine.warnings.push(...decoded.warnings);
  engine.write(normalise(decoded.text));
  const summary = engine.end();
  return { format: summary.format, encoding: decoded.encoding, payments: engine.take(), rejected: summary.rejected, warnings: summary.warnings };
}

/** Try the layouts in order; null when none recognises the file. */
export function parseCsv(bytes: Buffer, fileName: string, layouts: CsvLayout[]): ParsedFile | null {
  for (const layout of layouts) {
    let text: string;
    try {
      text = normalise(decodeCsv(bytes, layout.encoding, layout.singleByteEncoding).text);
    } catch (e) {
      if (e instanceof IntakeError && (e.code === 'EMPTY_FILE' || e.code === 'UNSUPPORTED_ENCODING')) throw e;
      continue; // this layout cannot decode these bytes
    }
    if (recognises(text, layout)) return parseWithLayout(bytes, fileName, layout);
  }
  return null;
}
