import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseInputFile } from '../transformers/intake.ts';
import { loadCsvLayouts } from '../transformers/csv/layout.ts';
import { classify, type ClassifyMode } from '../transformers/classify/classify.ts';
import { PayeeIndex, parsePayeesCsv } from '../transformers/classify/payees.ts';
import { DEFAULT_IDENTIFIER_CONFIG, extractIdentifiers, findPeriod } from '../transformers/classify/identifiers.ts';
import { isValidInn, isValidOgrn, checkAccount } from '../transformers/classify/checks.ts';
import type { Payment } from '../transformers/payment.ts';

const S = new URL('./fixtures/samples/', import.meta.url).pathname;
const layouts = loadCsvLayouts(readFileSync(new URL('../config/csv-layouts.yaml', import.meta.url), 'utf8'));
const payees = parsePayeesCsv(readFileSync(S + 'payees.csv'), 'payees.csv');
const index = new PayeeIndex(payees.records);

const FILES = [
  'ufebs/PacketEPD_20251105_cp1251.xml',
  'ufebs/ED101_20251106_utf8.xml',
  'ufebs/ED108_20251106_registry_cp1251.xml',
  'ufebs/PacketEPD_20251107_signed_ed-prefix.xml',
  'csv/A_sber_tagged_cp1251.txt',
  'csv/B_hash-header_accrual-style_cp1251.txt',
  'csv/C_agent_header-row_utf8-bom.csv',
];
const parsed = new Map(FILES.map((f) => [f, parseInputFile(readFileSync(S + f), f, layouts).payments]));

// samples README table: [payments, total, R n, R kop, I n, I kop, RI n, RI kop]
const TABLE: Record<string, number[]> = {
  'ufebs/PacketEPD_20251105_cp1251.xml': [7, 25910927, 5, 16026427, 4, 1026427, 5, 16026427],
  'ufebs/ED101_20251106_utf8.xml': [1, 412050, 1, 412050, 1, 412050, 1, 412050],
  'ufebs/ED108_20251106_registry_cp1251.xml': [5, 1997734, 5, 1997734, 4, 1766719, 5, 1997734],
  'ufebs/PacketEPD_20251107_signed_ed-prefix.xml': [4, 34145210, 2, 201910, 2, 657590, 3, 811910],
  'csv/A_sber_tagged_cp1251.txt': [6, 1482069, 6, 1482069, 3, 801014, 6, 1482069],
  'csv/B_hash-header_accrual-style_cp1251.txt': [5, 1469260, 5, 1469260, 4, 1289360, 5, 1469260],
  'csv/C_agent_header-row_utf8-bom.csv': [6, 1010797, 4, 645897, 4, 827757, 5, 945797],
};

function count(ps: Payment[], mode: ClassifyMode): [number, number] {
  const rep = ps.filter((p) => classify(p, index, { mode, identifiers: DEFAULT_IDENTIFIER_CONFIG }).decision === 'REPORTABLE');
  return [rep.length, rep.reduce((s, p) => s + p.amountKop, 0)];
}

test('payees.csv: 8 rows, quoted names with ; and doubled quotes', (t) => {
  t.deepEqual(payees.rejected, []);
  t.is(payees.records.length, 8);
  t.is(index.size, 8);
  const r = index.find('044599202', '40702810502000012345')!;
  t.is(r.name, 'ООО "УК "Жилсервис-Пример""');
  t.is(r.guid, '095ac6bd-f1c0-4164-8ccf-32a0b3dcb789');
  t.true(index.find('044599202', '40603810100000000201')!.capitalRepair);
  t.is(index.find('044599101', '40703810000000000777')!.name, 'ТСН "Дом на Садовой; корпус 2"');
  t.is(index.find('044599202', '40702810002000066066'), undefined);
});

test('payees.csv: Excel-mangled and wrong-length rows rejected with line numbers', (t) => {
  const text = readFileSync(S + 'payees.csv', 'utf8').trimEnd().split('\n');
  text[2] = text[2]!.replace('044599303', '44599303'); // leading zero lost
  text[3] = text[3]!.replace('40603810100000000201', '4,06038E+19');
  text[4] = text[4]!.replace('1059936504187', '1,05994E+12');
  const r = parsePayeesCsv(Buffer.from(text.join('\n') + '\n'), 'p.csv');
  t.is(r.records.length, 5);
  t.deepEqual(r.rejected.map((x) => x.location), ['line 3', 'line 4', 'line 5']);
  t.regex(r.rejected[1]!.message, /spreadsheet/);
});

for (const f of FILES) {
  test(`R / I / R∪I counts and sums: ${f}`, (t) => {
    const ps = parsed.get(f)!;
    const [n, kop, rn, rk, i_n, ik, rin, rik] = TABLE[f]!;
    t.is(ps.length, n);
    t.is(ps.reduce((s, p) => s + p.amountKop, 0), kop);
    t.deepEqual(count(ps, 'R'), [rn, rk]);
    t.deepEqual(count(ps, 'I'), [i_n, ik]);
    t.deepEqual(count(ps, 'RI'), [rin, rik]);
  });
}

test('totals over all seven files', (t) => {
  const all = [...parsed.values()].flat();
  t.is(all.length, 34);
  t.is(all.reduce((s, p) => s + p.amountKop, 0), 66428047);
  t.deepEqual(count(all, 'R'), [28, 22235347]);
  t.deepEqual(count(all, 'I'), [22, 6780917]);
  t.deepEqual(count(all, 'RI'), [30, 23145247]);
});

// Per reportable payment: [ref, ИПД, ИЖКУ, ЕЛС, л/с, period "MM.YYYY"]
const EXPECTED: [string, string?, string?, string?, string?, string?][] = [
  ['ED101/1002', '90АБ123456-01-1025', undefined, undefined, undefined, '10.2025'],
  ['ED101/1003', undefined, '90БВ654321-02', undefined, undefined, '10.2025'],
  ['ED101/1004', undefined, undefined, '90ВГ000777', undefined, '10.2025'],
  ['ED101/1007', '90АБ123456-03-1025', undefined, undefined, undefined, '10.2025'],
  ['ED101/1008', undefined, undefined, undefined, undefined, undefined],
  ['ED101/1101', undefined, undefined, '90ЖК246810', '00417', '10.2025'],
  ['ED108/1102#1', '90КМ615992-01-1025', undefined, '90КМ615992', undefined, '10.2025'],
  ['ED108/1102#2', undefined, undefined, undefined, '0031207', '10.2025'],
  ['ED108/1102#3', undefined, '90АБ777001-01', undefined, undefined, '10.2025'],
  ['ED108/1102#4', '90ДЕ100200-01-1025', undefined, undefined, undefined, undefined],
  ['ED108/1102#5', '90ЕЖ300400-01-1025', undefined, undefined, undefined, '10.2025'],
  ['ED101/1202', undefined, undefined, undefined, '7700123', '10.2025'],
  ['ED101/1203', '91НД500600-01-1025', undefined, undefined, undefined, '10.2025'],
  ['ED101/1205', undefined, undefined, '90ЗИ135790', undefined, '10.2025'],
  ['op 000157000001', '90ЛМ200301-01-1025', undefined, undefined, '0012401', undefined],
  ['op 000157000002', undefined, undefined, undefined, '0012402', undefined],
  ['op 000157000003', '90ЛМ200303-01-1025', undefined, undefined, '0012403', undefined],
  ['op 000157000004', undefined, undefined, undefined, '0012404', undefined],
  ['op 000157000005', '90ЛМ200305-01-1025', undefined, undefined, '0012405', undefined],
  ['op 000157000006', undefined, undefined, undefined, '0012406', undefined],
  ['op 000000812301', undefined, undefined, '90БВ654322', '100216', '10.2025'],
  ['op 000000812302', undefined, undefined, '90БВ654400', '100412', '10.2025'],
  ['op 000000812303', undefined, undefined, undefined, '100403', '10.2025'],
  ['op 000000812304', undefined, undefined, '90БВ654501', '100544', '10.2025'],
  ['op 000000812305', undefined, undefined, '90БВ654502', '100545', '10.2025'],
  ['op A-20251106-0001', '90МН700101-01-1025', undefined, undefined, undefined, '10.2025'],
  ['op A-20251106-0003', undefined, undefined, undefined, '5500123', '10.2025'],
  ['op A-20251106-0004', undefined, undefined, '90ЗИ135791', undefined, '10.2025'],
  ['op A-20251106-0005', '91НД500601-01-1025', undefined, undefined, undefined, undefined],
  ['op A-20251106-0006', undefined, '91НД500601-03', undefined, undefined, '10.2025'],
];

test('per-payment identifiers, л/с and period of reportable payments (R∪I)', (t) => {
  const all = [...parsed.values()].flat();
  const rep = all.map((p) => ({ p, c: classify(p, index, { mode: 'RI', identifiers: DEFAULT_IDENTIFIER_CONFIG }) })).filter((x) => x.c.decision === 'REPORTABLE');
  t.deepEqual(
    rep.map(({ p, c }) => [p.ref, c.paymentDocumentId, c.serviceId, c.els, c.accountNumber, c.period ? `${String(c.period.month).padStart(2, '0')}.${c.period.year}` : undefined]),
    EXPECTED,
  );
});

test('classification rules and reason sentences', (t) => {
  const all = [...parsed.values()].flat();
  const by = (ref: string) => classify(all.find((p) => p.ref === ref)!, index, { mode: 'RI', identifiers: DEFAULT_IDENTIFIER_CONFIG });
  const c1 = by('ED101/1002');
  t.deepEqual(c1.rules, ['registry-match', 'identifier:paymentDocumentId']);
  t.is(c1.reason, 'payee 044599202/40702810502000012345 is in the payee registry (guid 095ac6bd-f1c0-4164-8ccf-32a0b3dcb789); ИПД 90АБ123456-01-1025 in field 22');
  t.is(c1.payee?.guid, '095ac6bd-f1c0-4164-8ccf-32a0b3dcb789');
  const c5 = by('ED101/1005');
  t.is(c5.decision, 'SKIPPED');
  t.deepEqual(c5.rules, ['none']);
  t.is(c5.reason, 'not reportable: payee 044599303/40817810200031234567 is not in the payee registry and no ЖКУ identifier was found');
  const c1203 = by('ED101/1203');
  t.deepEqual(c1203.rules, ['identifier:paymentDocumentId']);
  t.is(c1203.payee, undefined);
  // л/с alone does not make a payment reportable in mode I
  const c2 = classify(all.find((p) => p.ref === 'ED108/1102#2')!, index, { mode: 'I', identifiers: DEFAULT_IDENTIFIER_CONFIG });
  t.is(c2.decision, 'SKIPPED');
  t.is(c2.accountNumber, '0031207');
  // INN mismatch with the registry → warning
  const p = { ...all.find((x) => x.ref === 'ED101/1008')! };
  p.payee = { ...p.payee, inn: '9909630905' };
  t.true(classify(p, index, { mode: 'RI', identifiers: DEFAULT_IDENTIFIER_CONFIG }).warnings.some((w) => w.code === 'INN_MISMATCH'));
});

// ---- identifier table cases ----------------------------------------------------------------------
type Case = { purpose: string; paymentId?: string; ipd?: string; service?: string; els?: string; ls?: string; period?: string; warn?: string; map?: boolean };
const CASES: Case[] = [
  { purpose: '///ЖКУ90БВ654321-02;ПЕРИОД 10.2025;', service: '90БВ654321-02', period: '10.2025' },
  { purpose: 'ИПД:90АБ123456-01-1025', ipd: '90АБ123456-01-1025' },
  { purpose: 'ИПД№ 90АБ123456-01-1025 за 09.2025', ipd: '90АБ123456-01-1025', period: '09.2025' },
  { purpose: 'оплата 90аб123456-01-1025', ipd: '90АБ123456-01-1025' }, // lower case is upper-cased
  { purpose: 'ЕЛС90ВГ000777|ИЖКУ90ВГ000777-05', service: '90ВГ000777-05', els: '90ВГ000777' },
  { purpose: 'ИПД 90АБ123456-01-1025, ИЖКУ 90АБ123456-01, ЕЛС 90АБ123456', ipd: '90АБ123456-01-1025', service: '90АБ123456-01', els: '90АБ123456' },
  { purpose: 'ИПД 90АБ123456-01-1025 ЕЛС 91ВГ000001', ipd: '90АБ123456-01-1025', els: '91ВГ000001', warn: 'ID_PREFIX_MISMATCH' },
  { purpose: 'ЕЛС 90АБ12345 (пять цифр)', warn: 'ID_MARKER_WITHOUT_TOKEN' },
  { purpose: '190АБ1234567 лишние цифры' },
  { purpose: 'ИПД 90АБ123456-01-10251', warn: 'ID_MARKER_WITHOUT_TOKEN' },
  { purpose: 'ЕЛС 90АБ123456-1 ЖКУ', warn: 'ID_MARKER_WITHOUT_TOKEN' }, // ЕЛС followed by -digit is not an ЕЛС
  { purpose: 'Оплата по счету № 341 от 01.11.2025' },
  { purpose: 'счет от 2025-11-01, период 11.2025', period: '11.2025' },
  { purpose: 'ЖКУ за ноябрь 2025 г.', period: '11.2025' },
  { purpose: 'за Май 2024', period: '05.2024' },
  { purpose: 'л/с 0031207 за октябрь 2025', ls: '0031207', period: '10.2025' },
  { purpose: 'Лицевой счет: 12-34/5, кв. 1', ls: '12-34/5' },
  { purpose: 'ЛС №77001;', ls: '77001' },
  { purpose: 'ЕЛС 90ЗИ135790 вывоз ТКО', els: '90ЗИ135790' }, // ЛС tail of ЕЛС is not a л/с marker
  { purpose: 'л/с 123АБ', }, // л/с token must end before a non-alphanumeric
  { purpose: 'ИПД 90AB123456-01-1025', warn: 'LATIN_LOOKALIKE' }, // Latin A, B: not used by default
  { purpose: 'ИПД 90AB123456-01-1025', ipd: '90АВ123456-01-1025', warn: 'LATIN_LOOKALIKE', map: true },
  { purpose: 'x', paymentId: '90АБ123456-01-1025', ipd: '90АБ123456-01-1025' },
  { purpose: 'x', paymentId: ' 90ЖК246810 ', els: '90ЖК246810' },
  { purpose: 'x', paymentId: '0' },
  { purpose: 'x', paymentId: '18210601010031000110' }, // УИН, not ЖКУ
  { purpose: 'x', paymentId: 'ИПД 90АБ123456-01-1025' }, // field 22 must match exactly
];

for (const [i, c] of CASES.entries()) {
  test(`identifiers #${i + 1}: ${c.paymentId ? `field22 "${c.paymentId}"` : c.purpose}`, (t) => {
    const r = extractIdentifiers({ purpose: c.purpose, paymentId: c.paymentId }, { ...DEFAULT_IDENTIFIER_CONFIG, mapLatinLookalikes: !!c.map });
    t.is(r.paymentDocumentId, c.ipd);
    t.is(r.serviceId, c.service);
    t.is(r.els, c.els);
    t.is(r.accountNumber, c.ls);
    t.is(r.period ? `${String(r.period.month).padStart(2, '0')}.${r.period.year}` : undefined, c.period);
    if (c.warn) t.true(r.warnings.some((w) => w.code === c.warn), JSON.stringify(r.warnings));
    else t.deepEqual(r.warnings, []);
  });
}

test('hints: CSV columns first, whole value only', (t) => {
  const r = extractIdentifiers({ purpose: '', hints: { idField: '2025/10-0412', els: '90БВ654322', period: '102025', accountNumber: '100216' } });
  t.is(r.els, '90БВ654322');
  t.is(r.paymentDocumentId, undefined);
  t.deepEqual(r.period, { year: 2025, month: 10 });
  t.is(r.accountNumber, '100216');
  t.is(findPeriod('10.10.2025'), undefined);
});

test('check digits', (t) => {
  t.true(isValidInn('9909630905'));
  t.true(isValidInn('990909216175'));
  t.false(isValidInn('1111111111'));
  t.false(isValidInn('99096309'));
  t.true(isValidOgrn('1029921332275'));
  t.false(isValidOgrn('1029921332276'));
  t.true(checkAccount('40702810502000012345', '044599202').ok);
  t.false(checkAccount('40702810502000012346', '044599202').ok);
  t.true(checkAccount('30101810745990000101', '044599101', 'correspondent').ok);
  t.true(checkAccount('03100643000000019900', '019999901').ok);
});
