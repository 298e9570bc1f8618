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
  if (!head || head.record.length !== PAYEES_HEADER.length || head.record.some((h, i) => h.trim() !== PAYEES_HEADER[i])) {
    throw new IntakeError('UNKNOWN_FORMAT', `${fileName} line 1`, `payee registry header must be ${PAYEES_HEADER.join(';')}`);
  }
  const records: PayeeRecord[] = [];
  const rejected: RecordProblem[] = [];
  for (const { record: r, info } of rows.slice(1)) {
    const location = `line ${info.lines}`;
    const bad: string[] = [];
    if (r.length !== PAYEES_HEADER.length) {
      rejected.push({ code: 'INVALID_RECORD', location, message: `${r.length} fields, expected ${PAYEES_HEADER.length}` });
      continue;
    }
    const [ogrn, inn, kpp, name, bic, account, corr, bankName, capital, guid, updatedAt] = r.map((v) => v.trim()) as [string, string, string, string, string, string, string, string, string, string, string];
    const excel = r.find((v) => EXCEL_RE.test(v.trim()));
    if (excel) bad.push(`"${excel}" looks like a spreadsheet-mangled number (scientific notation)`);
    if (!isValidOgrn(ogrn)) bad.push(`ОГРН "${ogrn}" is not 13/15 digits with a valid check digit`);
    if (!isValidInn(inn)) bad.push(`ИНН "${inn}" is not 10/12 digits with valid check digits`);
    if (kpp !== '' && !KPP_RE.test(kpp)) bad.push(`КПП "${kpp}" is not 9 characters`);
    if (!name) bad.push('Наименование is empty');
    if (!BIC_RE.test(bic)) bad.push(`БИК "${bic}" is not 9 digits (leading zero lost?)`);
    else {
      if (!ACCOUNT_RE.test(account)) bad.push(`Расчетный счет "${account}" is not a 20-character account`);
      else {
        const c = checkAccount(account, bic, 'client');
        if (!c.ok) bad.push(`Расчетный счет: ${c.reason}`);
      }
      if (corr !== '') {
        const c = checkAccount(corr, bic, 'correspondent');
        if (!c.ok) bad.push(`Корр. счет: ${c.reason}`);
      }
    }
    if (capital !== 'Да' && capital !== 'Нет') bad.push(`Капремонт "${capital}" must be Да or Нет`);
    if (!GUID_RE.test(guid)) bad.push(`GUID "${guid}" is not a UUID`);
    if (!ISO_RE.test(updatedAt) || Number.isNaN(Date.parse(updatedAt))) bad.push(`Дата изменения "${updatedAt}" is not ISO 8601 with an offset`);
    if (bad.length) {
      rejected.push({ code: 'INVALID_RECORD', location, message: bad.join('; '), ref: `${bic}/${account}` });
      continue;
    }
    records.push({ ogrn, inn, kpp, name, bic, account, corrAccount: corr, bankName, capitalRepair: capital === 'Да', guid, updatedAt });
  }
  return { records, rejected };
}

/** In-memory index on (БИК, расчётный счёт); for a repeated key the most recently changed row wins. */
export class PayeeIndex {
  private readonly byKey = new Map<string, PayeeRecord>();

  constructor(records: PayeeRecord[]) {
    for (const r of records) {
      const k = `${r.bic}/${r.account}`;
      const prev = this.byKey.get(k);
      if (!prev || Date.parse(r.updatedAt) >= Date.parse(prev.updatedAt)) this.byKey.set(k, r);
    }
  }

  find(bic: string, account: string): PayeeRecord | undefined {
    return this.byKey.get(`${bic}/${account}`);
  }

  get size(): number {
    return this.byKey.size;
  }
}
