import test from 'ava';
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { parseCsv, moneyToKopecks } from '../transformers/csv/parse.ts';
import { csvLayoutSchema, loadCsvLayouts } from '../transformers/csv/layout.ts';
import { parseInputFile } from '../transformers/intake.ts';
import { IntakeError, type ParsedFile } from '../transformers/payment.ts';

const SAMPLES = new URL('./fixtures/samples/csv/', import.meta.url).pathname;
const FIX = new URL('./fixtures/intake/', import.meta.url);
const layouts = loadCsvLayouts(readFileSync(new URL('../config/csv-layouts.yaml', import.meta.url), 'utf8'));
const read = (f: string) => readFileSync(SAMPLES + f);
const cp = (s: string) => iconv.encode(s, 'windows-1251');
const text1251 = (f: string) => iconv.decode(read(f), 'windows-1251');
const total = (r: ParsedFile) => r.payments.reduce((s, p) => s + p.amountKop, 0);
const parse = (b: Buffer) => parseInputFile(b, 'registry.txt', layouts);

function code(t: any, fn: () => unknown, expected: string, loc?: string): IntakeError {
  const e = t.throws(fn, { instanceOf: IntakeError }) as IntakeError;
  t.is(e.code, expected, e.message);
  if (loc) t.is(e.location, loc, e.message);
  return e;
}

test('config/csv-layouts.yaml validates: three layouts', (t) => {
  t.deepEqual(layouts.map((l) => l.name), ['A_sber_tagged', 'B_hash_header', 'C_agent_header_row']);
  t.throws(() => csvLayoutSchema.parse({ name: 'x', recognise: {}, fields: {}, dateFormat: 'dd.mm.yyyy' }));
});

test('layout A: tagged Sber style, cp1251', (t) => {
  const r = parse(read('A_sber_tagged_cp1251.txt'));
  t.is(r.format, 'CSV:A_sber_tagged');
  t.is(r.encoding, 'windows-1251');
  t.deepEqual(r.rejected, []);
  t.is(r.payments.length, 6);
  t.is(total(r), 1482069);
  t.deepEqual(r.payments.map((p) => [p.ref, p.amountKop, p.hints.accountNumber, p.hints.idField]), [
    ['op 000157000001', 289015, '0012401', '90ЛМ200301-01-1025'],
    ['op 000157000002', 150000, '0012402', undefined],
    ['op 000157000003', 412000, '0012403', '90ЛМ200303-01-1025'],
    ['op 000157000004', 231055, '0012404', '2025/10-0412'],
    ['op 000157000005', 99999, '0012405', '90ЛМ200305-01-1025'],
    ['op 000157000006', 300000, '0012406', undefined],
  ]);
  const p = r.payments[0]!;
  t.is(p.sourceKey, 'CSV:A_sber_tagged:9909630905:000157000001');
  t.is(p.location, 'line 2');
  t.is(p.date, '2025-11-05');
  t.deepEqual(p.payee, { bic: '044599202', account: '40702810502000012345', inn: '9909630905', kpp: '990901001' });
});

test('layout B: # header, totals line, # inside data, cp1251', (t) => {
  const r = parse(read('B_hash-header_accrual-style_cp1251.txt'));
  t.is(r.format, 'CSV:B_hash_header');
  t.is(r.payments.length, 5);
  t.is(total(r), 1469260);
  t.deepEqual(r.payments.map((p) => [p.ref, p.amountKop, p.hints.els, p.hints.accountNumber, p.hints.period]), [
    ['op 000000812301', 318725, '90БВ654322', '100216', '102025'],
    ['op 000000812302', 204560, '90БВ654400', '100412', '102025'],
    ['op 000000812303', 179900, undefined, '100403', '102025'],
    ['op 000000812304', 265075, '90БВ654501', '100544', '102025'],
    ['op 000000812305', 501000, '90БВ654502', '100545', '102025'],
  ]);
  t.is(r.payments[1]!.hints.payerAddress, 'г. Примерск, ул. Садовая, д. 10, кв. #12');
  t.is(r.payments[0]!.payer.name, 'Голубева Инна Петровна');
  t.is(r.payments[0]!.sourceKey, 'CSV:B_hash_header:9909014543:000000812301');
  t.is(r.payments[0]!.location, 'line 9');
  t.is(r.payments[0]!.date, '2025-11-06');
});

test('layout C: header row, UTF-8 BOM, decimal comma, quoted ;', (t) => {
  const r = parse(read('C_agent_header-row_utf8-bom.csv'));
  t.is(r.format, 'CSV:C_agent_header_row');
  t.is(r.encoding, 'utf-8');
  t.is(r.payments.length, 6);
  t.is(total(r), 1010797);
  t.deepEqual(r.payments.map((p) => [p.ref, p.amountKop, p.payee.bic, p.payee.account]), [
    ['op A-20251106-0001', 412050, '044599202', '40702810502000012345'],
    ['op A-20251106-0002', 65000, '044599303', '40702810900030005050'],
    ['op A-20251106-0003', 118040, '044599202', '40603810100000000201'],
    ['op A-20251106-0004', 31277, '044599202', '40702810602000045678'],
    ['op A-20251106-0005', 299900, '044599202', '40702810002000066066'],
    ['op A-20251106-0006', 84530, '044599202', '40702810802000007788'],
  ]);
  t.is(r.payments[0]!.purpose, 'Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025');
  t.is(r.payments[0]!.sourceKey, 'CSV:C_agent_header_row:9909630905:A-20251106-0001');
  t.is(r.payments[0]!.location, 'line 2');
});

test('layout C in cp1251 without BOM, with an Итого row', (t) => {
  const s = read('C_agent_header-row_utf8-bom.csv').subarray(3).toString('utf8') + 'Итого;;;;;;;;10107,97;6,50\r\n';
  const r = parse(cp(s));
  t.is(r.encoding, 'windows-1251');
  t.is(r.payments.length, 6);
  t.is(r.payments[3]!.purpose, 'ЕЛС 90ЗИ135791 вывоз ТКО за 10.2025');
  code(t, () => parse(cp(s.replace('10107,97', '10107,98'))), 'SUM_MISMATCH', 'line 8');
});

test('money on the string', (t) => {
  const rub = { decimal: 'any' as const, unit: 'rubles' as const };
  t.is(moneyToKopecks('14820.69', rub), 1482069);
  t.is(moneyToKopecks('1 234,5', rub), 123450);
  t.is(moneyToKopecks('1\u00a0234\u202f567', rub), 123456700);
  t.is(moneyToKopecks('0.1', rub), 10);
  t.is(moneyToKopecks('1,234.56', rub), undefined);
  t.is(moneyToKopecks('1,5E+03', rub), undefined);
  t.is(moneyToKopecks('-5.00', rub), undefined);
  t.is(moneyToKopecks('5.001', rub), undefined);
  t.is(moneyToKopecks('4120,50', { decimal: '.', unit: 'rubles' }), undefined);
  t.is(moneyToKopecks('412050', { decimal: 'any', unit: 'kopecks' }), 412050);
});

test('no layout recognises → null / UNKNOWN_FORMAT', (t) => {
  t.is(parseCsv(Buffer.from('a;b;c\n1;2;3\n'), 'x.csv', layouts), null);
  code(t, () => parse(Buffer.from('a;b;c\n1;2;3\n')), 'UNKNOWN_FORMAT');
  code(t, () => parse(Buffer.alloc(0)), 'EMPTY_FILE');
});

test('unclosed quote → CSV_MALFORMED naming the line where the quote opened', (t) => {
  const e = code(t, () => parse(readFileSync(new URL('C_unclosed_quote.csv', FIX))), 'CSV_MALFORMED', 'line 3');
  t.regex(e.message, /unclosed quote/);
});

test('wrong column count in a data row → CSV_MALFORMED', (t) => {
  const s = text1251('B_hash-header_accrual-style_cp1251.txt').replace(';100403;102025;', ';100403;');
  code(t, () => parse(cp(s)), 'CSV_MALFORMED', 'line 11');
});

test('footer mismatches: count and sum (A footer, B totals line and #FILESUM)', (t) => {
  const a = text1251('A_sber_tagged_cp1251.txt');
  code(t, () => parse(cp(a.replace('=6;14820.69', '=7;14820.69'))), 'COUNT_MISMATCH', 'line 8');
  code(t, () => parse(cp(a.replace('=6;14820.69', '=6;14820.70'))), 'SUM_MISMATCH', 'line 8');
  code(t, () => parse(cp(a.replace(/=6;.*\r\n$/, ''))), 'CSV_MALFORMED');
  const b = text1251('B_hash-header_accrual-style_cp1251.txt');
  code(t, () => parse(cp(b.replace('ИТОГО;5;14692.60', 'ИТОГО;5;14692.61'))), 'SUM_MISMATCH', 'line 14');
  code(t, () => parse(cp(b.replace('ИТОГО;5;', 'ИТОГО;4;'))), 'COUNT_MISMATCH', 'line 14');
  code(t, () => parse(cp(b.replace('#FILESUM 14692.60', '#FILESUM 14692.00'))), 'SUM_MISMATCH', 'line 1');
});

test('one bad row is rejected with its line, the rest flows (totals on raw rows)', (t) => {
  // amount 0.00 on line 3: rejected; the footer (count 6, sum unchanged minus 1500.00) reconciles on raw rows
  const a = text1251('A_sber_tagged_cp1251.txt').replace(';1500.00;', ';0.00;').replace('=6;14820.69', '=6;13320.69');
  let r = parse(cp(a));
  t.is(r.payments.length, 5);
  t.like(r.rejected[0], { code: 'INVALID_SUM', location: 'line 3', ref: 'op 000157000002' });
  // bad payee account in layout C row 4
  const c0 = read('C_agent_header-row_utf8-bom.csv').toString('utf8');
  const c = c0.replace('40702810602000045678', '40702810602000045679');
  r = parse(Buffer.from(c));
  t.is(r.payments.length, 5);
  t.like(r.rejected[0], { code: 'INVALID_ACCOUNT', location: 'line 5', ref: 'op A-20251106-0004' });
  // Excel-mangled account
  r = parse(Buffer.from(c.replace('40702810002000066066', '4,07028E+19')));
  t.like(r.rejected.find((x) => x.ref === 'op A-20251106-0005'), { code: 'INVALID_ACCOUNT', location: 'line 6' });
  // payee INN check digit
  r = parse(Buffer.from(c0.replace('9909298373', '9909298374')));
  t.like(r.rejected.find((x) => x.ref === 'op A-20251106-0004'), { code: 'INVALID_INN' });
  // invalid date
  r = parse(Buffer.from(c0.replace('06.11.2025;14:30:00', '31.11.2025;14:30:00')));
  t.like(r.rejected[0], { code: 'INVALID_DATE', location: 'line 6' });
});

test('layout A: a line without CLIENTNO is not data', (t) => {
  const a = text1251('A_sber_tagged_cp1251.txt').replace('=6;', 'INFO;some note;\r\n=6;');
  const r = parse(cp(a));
  t.is(r.payments.length, 6);
  t.like(r.warnings[0], { code: 'LINE_SKIPPED', location: 'line 8' });
});

// a closing quote followed by more text was reported at the line where csv-parse noticed it (often a later one),
// in csv-parse's words and with a byte shown as Latin-1 ("got "Ð"") — found by a fresh user trying bad input
test('a quoted field closed badly: CSV_MALFORMED at the line its record starts, in words an operator can act on', (t) => {
  const head = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';
  const row = (op: string, purpose: string) => `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;${purpose};52,00;0,00\r\n`;
  const text = head + row('R-1', 'Оплата') + row('R-2', '"Оплата ЖКУ;\r\nИПД 90МН700101-01-1025" за 10.2025') + row('R-3', 'Оплата');
  const e = t.throws(() => parse(Buffer.from(text)), { instanceOf: IntakeError });
  t.is(e?.code, 'CSV_MALFORMED');
  t.is(e?.location, 'line 3');
  t.regex(e!.message, /quoted field in the record starting at line 3 is not closed properly: its closing quote must be followed by the delimiter ";"/);
  t.notRegex(e!.message, /trimable|Ð/);
});
