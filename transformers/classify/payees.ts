/**
 * Payee registry (ГИС ЖКХ «реестр получателей платежей», gis-zhkh §4) from the CSV layout of
 * shared/data/samples/payees.csv, and an in-memory index on the natural key (БИК, расчётный счёт).
 * Values are kept as strings; Excel-mangled numbers and wrong lengths reject the row (never repaired).
 */
import { parse } from 'csv-parse/sync';
import { decodeCsv } from '../encoding.ts';
import { IntakeError, type PayeeRecord, type RecordProblem } from '../payment.ts';
import { ACCOUNT_RE, BIC_RE, KPP_RE, checkAccount, isValidInn, isValidOgrn } from './checks.ts';

export const PAYEES_HEADER = ['ОГРН', 'ИНН', 'КПП', 'Наименование', 'БИК', 'Расчетный счет', 'Корр. счет', 'Банк', 'Капремонт', 'GUID', 'Дата изменения'];
/** the export layout (GET /api/v1/payees.csv, the АБС outbox file): the sample layout + budget columns; loadable again */
export const PAYEES_EXPORT_HEADER = [...PAYEES_HEADER, 'КБК', 'ОКТМО'];

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const EXCEL_RE = /^\d+(?:[.,]\d+)?E[+-]?\d+$/i;

export function parsePayeesCsv(bytes: Buffer, fileName: string): { records: PayeeRecord[]; rejected: RecordProblem[] } {
  const text = decodeCsv(bytes, 'auto').text.replace(/\r\n?/g, '\n');
  let rows: { record: string[]; info: { lines: number } }[];
  try {
    rows = parse(text, {
      delimiter: ';',
      quote: '"',
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      max_record_size: 65536,
      record_delimiter: '\n',
      info: true,
    }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (e) {
    const err = e as { code?: string; message?: string; lines?: number };
    throw new IntakeError('CSV_MALFORMED', `${fileName} line ${err.lines ?? '?'}`, `${err.code ?? ''} ${err.message ?? ''}`.trim());
  }
  const head = rows[0];
  const layout = [PAYEES_HEADER, PAYEES_EXPORT_HEADER].find((h) => head && head.record.length === h.length && head.record.every((x, i) => x.trim() === h[i]));
  if (!head || !layout) {
    throw new IntakeError('UNKNOWN_FORMAT', `${fileName} line 1`, `payee registry header must be ${PAYEES_HEADER.join(';')} (optionally followed by ;КБК;ОКТМО)`);
  }
  const records: PayeeRecord[] = [];
  const rejected: RecordProblem[] = [];
  for (const { record: r, info } of rows.slice(1)) {
    const location = `line ${info.lines}`;
    const bad: string[] = [];
    if (r.length !== layout.length) {
      rejected.push({ code: 'INVALID_RECORD', location, message: `${r.length} fields, expected ${layout.length}` });
      continue;
    }
    const [ogrn, inn, kpp, name, bic, account, corr, bankName, capital, guid, updatedAt, kbk, oktmo] = r.map((v) => v.trim()) as [string, string, string, string, string, string, string, string, string, string, string, string?, string?];
    const excel = r.find((v) => EXCEL_RE.test(v.trim()));
    if (excel) bad.push(`"${excel}" looks like a spreadsheet-mangled number (scientific notation)`);
    if (capital !== 'Да' && capital !== 'Нет') bad.push(`Капремонт "${capital}" must be Да or Нет`);
    const rec: PayeeRecord = { ogrn, inn, kpp, name, bic, account, corrAccount: corr, bankName, capitalRepair: capital === 'Да', guid, updatedAt };
    if (kbk) rec.kbk = kbk;
    if (oktmo) rec.oktmo = oktmo;
    bad.push(...payeeRecordProblems(rec));
    if (bad.length) {
      rejected.push({ code: 'INVALID_RECORD', location, message: bad.join('; '), ref: `${bic}/${account}` });
      continue;
    }
    records.push(rec);
  }
  return { records, rejected };
}

/** What is wrong with one registry record (CSV row or SMEV requisite set): check digits, shapes, account key. */
export function payeeRecordProblems(p: PayeeRecord): string[] {
  const bad: string[] = [];
  if (!isValidOgrn(p.ogrn)) bad.push(`ОГРН "${p.ogrn}" is not 13/15 digits with a valid check digit`);
  if (!isValidInn(p.inn)) bad.push(`ИНН "${p.inn}" is not 10/12 digits with valid check digits`);
  if (p.kpp !== '' && !KPP_RE.test(p.kpp)) bad.push(`КПП "${p.kpp}" is not 9 characters`);
  if (!p.name) bad.push('Наименование is empty');
  if (!BIC_RE.test(p.bic)) bad.push(`БИК "${p.bic}" is not 9 digits (leading zero lost?)`);
  else {
    if (!ACCOUNT_RE.test(p.account)) bad.push(`Расчетный счет "${p.account}" is not a 20-character account`);
    else {
      const c = checkAccount(p.account, p.bic, 'client');
      if (!c.ok) bad.push(`Расчетный счет: ${c.reason}`);
    }
    if (p.corrAccount !== '') {
      const c = checkAccount(p.corrAccount, p.bic, 'correspondent');
      if (!c.ok) bad.push(`Корр. счет: ${c.reason}`);
    }
  }
  if (!GUID_RE.test(p.guid)) bad.push(`GUID "${p.guid}" is not a UUID`);
  if (!ISO_RE.test(p.updatedAt) || Number.isNaN(Date.parse(p.updatedAt))) bad.push(`Дата изменения "${p.updatedAt}" is not ISO 8601 with an offset`);
  return bad;
}

/** The export layout: `;`-separated, every value quoted when it needs it, CRLF line ends (as the АБС expect). */
export function formatPayeesCsv(records: PayeeRecord[]): string {
  const q = (v: string) => (/[;"\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = [PAYEES_EXPORT_HEADER.join(';')];
  for (const r of records) {
    lines.push([r.ogrn, r.inn, r.kpp, r.name, r.bic, r.account, r.corrAccount, r.bankName, r.capitalRepair ? 'Да' : 'Нет', r.guid, r.updatedAt, r.kbk ?? '', r.oktmo ?? '']
      .map(q).join(';'));
  }
  return lines.join('\r\n') + '\r\n';
}

/** In-memory index on (БИК, расчётный счёт); for a repeated key the most recently changed row wins. Also by INN for the fallback. */
export class PayeeIndex {
  private readonly byKey = new Map<string, PayeeRecord>();
  private readonly byInn = new Map<string, PayeeRecord[]>();

  constructor(records: PayeeRecord[]) {
    for (const r of records) {
      const k = `${r.bic}/${r.account}`;
      const prev = this.byKey.get(k);
      if (!prev || Date.parse(r.updatedAt) >= Date.parse(prev.updatedAt)) this.byKey.set(k, r);
      const l = this.byInn.get(r.inn) ?? [];
      l.push(r);
      this.byInn.set(r.inn, l);
    }
  }

  find(bic: string, account: string): PayeeRecord | undefined {
    return this.byKey.get(`${bic}/${account}`);
  }

  /** Registry requisites of an INN (and KPP when given); the most recently changed first. */
  findByInn(inn: string, kpp?: string): PayeeRecord[] {
    return (this.byInn.get(inn) ?? []).filter((r) => !kpp || r.kpp === kpp).sort((a, b) => Date.parse(b.updatedAt) - Date.parse(a.updatedAt));
  }

  get size(): number {
    return this.byKey.size;
  }
}
