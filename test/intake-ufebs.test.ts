import test from 'ava';
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { parseUfebs } from '../transformers/ufebs/parse.ts';
import { UfebsStreamParser } from '../transformers/ufebs/stream.ts';
import { parseInputFile } from '../transformers/intake.ts';
import { decodeXml } from '../transformers/encoding.ts';
import { IntakeError, type ParsedFile } from '../transformers/payment.ts';

const SAMPLES = new URL('./fixtures/samples/ufebs/', import.meta.url).pathname;
const FIX = new URL('./fixtures/intake/', import.meta.url);
const read = (f: string) => readFileSync(SAMPLES + f);
const cp = (s: string) => iconv.encode(s, 'windows-1251');
const text1251 = (f: string) => iconv.decode(read(f), 'windows-1251');
const total = (r: ParsedFile) => r.payments.reduce((s, p) => s + p.amountKop, 0);

function code(t: any, fn: () => unknown, expected: string): IntakeError {
  const e = t.throws(fn, { instanceOf: IntakeError }) as IntakeError;
  t.is(e.code, expected, e.message);
  t.truthy(e.location, 'error names a location');
  return e;
}

test('PacketEPD cp1251: 7 ED101, amounts, sourceKeys, Cyrillic decoded', (t) => {
  const r = parseUfebs(read('PacketEPD_20251105_cp1251.xml'), 'x');
  t.is(r.format, 'UFEBS');
  t.is(r.encoding, 'windows-1251');
  t.deepEqual(r.rejected, []);
  t.is(r.payments.length, 7);
  t.is(total(r), 25910927);
  t.deepEqual(
    r.payments.map((p) => [p.ref, p.amountKop]),
    [
      ['ED101/1002', 523440],
      ['ED101/1003', 318725],
      ['ED101/1004', 96850],
      ['ED101/1005', 8650000],
      ['ED101/1006', 1234500],
      ['ED101/1007', 87412],
      ['ED101/1008', 15000000],
    ],
  );
  const p = r.payments[0]!;
  t.is(p.sourceKey, 'ED:4599101000:2025-11-05:1002');
  t.is(p.paymentId, '90АБ123456-01-1025');
  t.is(p.purpose, 'Оплата ЖКУ за октябрь 2025 г. по ЕПД. Без НДС');
  t.is(p.payee.name, 'ООО "УК "Жилсервис-Пример""');
  t.deepEqual([p.payee.bic, p.payee.account, p.payee.inn], ['044599202', '40702810502000012345', '9909630905']);
  t.is(p.location, 'PacketEPD/ED101[EDNo=1002] (line 3)');
  t.is(p.kind, 'ED101');
  t.is(p.date, '2025-11-05');
  t.is(r.payments[4]!.payee.account, '03100643000000019900'); // treasury account: key check skipped
});

test('ED101 UTF-8 single ED', (t) => {
  const r = parseUfebs(read('ED101_20251106_utf8.xml'), 'x');
  t.is(r.encoding, 'utf-8');
  t.is(r.payments.length, 1);
  const p = r.payments[0]!;
  t.is(p.amountKop, 412050);
  t.is(p.sourceKey, 'ED:4599101000:2025-11-06:1101');
  t.is(p.paymentId, '90ЖК246810');
  t.is(p.payer.name, 'Лаптева Марина Юрьевна');
  t.regex(p.purpose, /л\/с 00417/);
});

test('ED108: one payment per row, payee = ED108 Payee', (t) => {
  const r = parseUfebs(read('ED108_20251106_registry_cp1251.xml'), 'x');
  t.is(r.payments.length, 5);
  t.is(total(r), 1997734);
  t.deepEqual(
    r.payments.map((p) => [p.ref, p.sourceKey, p.amountKop, p.paymentId]),
    [
      ['ED108/1102#1', 'ED108:4599101000:2025-11-06:1102#1', 456700, '90КМ615992-01-1025'],
      ['ED108/1102#2', 'ED108:4599101000:2025-11-06:1102#2', 231015, undefined],
      ['ED108/1102#3', 'ED108:4599101000:2025-11-06:1102#3', 189990, '90АБ777001-01'],
      ['ED108/1102#4', 'ED108:4599101000:2025-11-06:1102#4', 1020030, undefined],
      ['ED108/1102#5', 'ED108:4599101000:2025-11-06:1102#5', 99999, undefined],
    ],
  );
  const p = r.payments[1]!;
  t.is(p.kind, 'ED108');
  t.is(p.date, '2025-11-05');
  t.is(p.payer.name, 'Белова Нина Аркадьевна');
  t.is(p.purpose, 'ЖКУ л/с 0031207 за октябрь 2025');
  t.is(p.payee.account, '40702810502000012345');
  t.regex(p.location, /^ED108\[EDNo=1102\]\/CreditTransferTransactionInfo\[TransactionID=2\] \(line \d+\)$/);
});

test('PacketEPD with ed: prefix and dsig:SigValue children', (t) => {
  const r = parseUfebs(read('PacketEPD_20251107_signed_ed-prefix.xml'), 'x');
  t.is(r.payments.length, 4);
  t.is(total(r), 34145210);
  t.deepEqual(r.payments.map((p) => p.ref), ['ED101/1202', 'ED101/1203', 'ED101/1204', 'ED101/1205']);
  t.is(r.payments[1]!.paymentId, '91НД500600-01-1025');
  t.is(r.payments[0]!.payer.name, 'Медведева Софья Павловна');
});

test('namespace-aware: other prefixes, comments, PIs, Session tolerated', (t) => {
  let s = text1251('PacketEPD_20251107_signed_ed-prefix.xml').replace(/<(\/?)ed:/g, '<$1n1:').replace('xmlns:ed=', 'xmlns:n1=');
  s = s.replace('<n1:ED101 ', '<!-- comment --><?pi x?><n1:Session SessionID="1"/><n1:ED101 ');
  const r = parseUfebs(cp(s), 'x');
  t.is(r.payments.length, 4);
});

test('SigEnvelope: base64 Object is parsed again', (t) => {
  const inner = read('ED101_20251106_utf8.xml').toString('base64').replace(/(.{76})/g, '$1\n');
  const env = `<?xml version="1.0" encoding="UTF-8"?>
<sen:SigEnvelope xmlns:sen="urn:cbr-ru:dsig:env:v1.1" xmlns:dsig="urn:cbr-ru:dsig:v1.1">
  <sen:SigContainer><dsig:MACValue>AAAA</dsig:MACValue></sen:SigContainer>
  <sen:Object>${inner}</sen:Object>
</sen:SigEnvelope>`;
  const r = parseUfebs(Buffer.from(env), 'x');
  t.is(r.payments.length, 1);
  t.is(r.payments[0]!.amountKop, 412050);
  t.regex(r.payments[0]!.location, /^SigEnvelope\/Object: ED101/);
});

test('bad input: not XML and no layout → UNKNOWN_FORMAT', (t) => {
  code(t, () => parseInputFile(Buffer.from('hello world\nthis is not a registry\n'), 'x.xml', []), 'UNKNOWN_FORMAT');
});

test('bad input: broken XML → NOT_WELL_FORMED with line/column', (t) => {
  const s = text1251('PacketEPD_20251105_cp1251.xml').replace('</ED101>', '</ED10>');
  const e = code(t, () => parseUfebs(cp(s), 'x'), 'NOT_WELL_FORMED');
  t.regex(e.location, /line \d+, column \d+/);
  const truncated = read('PacketEPD_20251105_cp1251.xml').subarray(0, 2000);
  code(t, () => parseUfebs(truncated, 'x'), 'NOT_WELL_FORMED');
  // raw quotes inside an attribute value (hand-made samples)
  code(t, () => parseUfebs(Buffer.from('<ED101 xmlns="urn:cbr-ru:ed:v2.0" NameP="АО "БАНК""/>'), 'x'), 'NOT_WELL_FORMED');
});

test('bad input: DOCTYPE / billion laughs → DTD_FORBIDDEN, nothing expanded', (t) => {
  const e = code(t, () => parseUfebs(readFileSync(new URL('billion-laughs.xml', FIX)), 'x'), 'DTD_FORBIDDEN');
  t.regex(e.location, /line 2/);
  t.false(e.message.includes('lollol'));
  code(t, () => parseUfebs(Buffer.from('<?xml version="1.0"?><!DOCTYPE ED101><ED101 xmlns="urn:cbr-ru:ed:v2.0"/>'), 'x'), 'DTD_FORBIDDEN');
  code(t, () => parseInputFile(readFileSync(new URL('billion-laughs.xml', FIX)), 'x', []), 'DTD_FORBIDDEN');
});

test('encodings: UTF-8 text under a windows-1251 label → ENCODING_MISMATCH; BOM rules; UTF-16', (t) => {
  const utf8 = read('ED101_20251106_utf8.xml').toString('utf8').replace('encoding="UTF-8"', 'encoding="windows-1251"');
  code(t, () => parseUfebs(Buffer.from(utf8, 'utf8'), 'x'), 'ENCODING_MISMATCH');
  // cp1251 bytes under a UTF-8 label
  const s = text1251('PacketEPD_20251105_cp1251.xml').replace('encoding="windows-1251"', 'encoding="UTF-8"');
  code(t, () => parseUfebs(cp(s), 'x'), 'ENCODING_MISMATCH');
  // BOM + windows-1251 label + cp1251 bytes → decoded as 1251, warning BOM_IGNORED
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), read('PacketEPD_20251105_cp1251.xml')]);
  const r = parseUfebs(withBom, 'x');
  t.is(r.payments.length, 7);
  t.true(r.warnings.some((w) => w.code === 'BOM_IGNORED'));
  t.is(r.payments[0]!.payer.name, 'Кузьмина Ольга Сергеевна');
  code(t, () => parseUfebs(Buffer.from('\ufeff<a/>', 'utf16le'), 'x'), 'UNSUPPORTED_ENCODING');
  code(t, () => parseUfebs(Buffer.from('<?xml version="1.0" encoding="KOI8-R"?><a/>'), 'x'), 'UNSUPPORTED_ENCODING');
  t.is(decodeXml(Buffer.from('<?xml version="1.0" encoding="Windows-1251"?><a/>')).encoding, 'windows-1251');
});

test('bad input: empty file → EMPTY_FILE', (t) => {
  code(t, () => parseInputFile(Buffer.alloc(0), 'x', []), 'EMPTY_FILE');
  code(t, () => parseInputFile(Buffer.from([0xef, 0xbb, 0xbf, 0x20, 0x0d, 0x0a]), 'x', []), 'EMPTY_FILE');
});

test('bad input: unknown root → UNKNOWN_ROOT', (t) => {
  code(t, () => parseUfebs(Buffer.from('<PacketEPD xmlns="urn:other"/>'), 'x'), 'UNKNOWN_ROOT');
});

test('packet count and sum mismatches', (t) => {
  const s = text1251('PacketEPD_20251105_cp1251.xml');
  const e1 = code(t, () => parseUfebs(cp(s.replace('EDQuantity="7"', 'EDQuantity="8"')), 'x'), 'COUNT_MISMATCH');
  t.regex(e1.location, /PacketEPD \(line 2\)/);
  code(t, () => parseUfebs(cp(s.replace('Sum="25910927"', 'Sum="25910928"')), 'x'), 'SUM_MISMATCH');
  const ed108 = text1251('ED108_20251106_registry_cp1251.xml');
  code(t, () => parseUfebs(cp(ed108.replace('TransactionSum="99999"', 'TransactionSum="99998"')), 'x'), 'SUM_MISMATCH');
});

test('record-level rejects: invalid sum / account / INN, the others flow', (t) => {
  const s = text1251('PacketEPD_20251105_cp1251.xml');
  // ED 1005 Sum 8650000 → 0 (invalid) with the packet Sum adjusted: the packet check uses the raw values
  const badSum = s.replace('Sum="8650000"', 'Sum="0"').replace('Sum="25910927"', `Sum="${25910927 - 8650000}"`);
  let r = parseUfebs(cp(badSum), 'x');
  t.is(r.payments.length, 6);
  t.is(r.rejected.length, 1);
  t.like(r.rejected[0], { code: 'INVALID_SUM', ref: 'ED101/1005', location: 'PacketEPD/ED101[EDNo=1005] (line 39)' });
  // account key broken (last digit changed)
  r = parseUfebs(cp(s.replace('PersonalAcc="40702810802000007788"', 'PersonalAcc="40702810802000007789"')), 'x');
  t.is(r.payments.length, 6);
  t.like(r.rejected[0], { code: 'INVALID_ACCOUNT', ref: 'ED101/1007' });
  t.regex(r.rejected[0]!.location, /ED101\[EDNo=1007\] \(line \d+\)/);
  // payee INN check digit broken
  r = parseUfebs(cp(s.replaceAll('INN="9909014543"', 'INN="9909014544"')), 'x');
  t.is(r.payments.length, 5); // 1003 and 1008 both pay this payee
  t.deepEqual(r.rejected.map((x) => [x.code, x.ref]), [
    ['INVALID_INN', 'ED101/1003'],
    ['INVALID_INN', 'ED101/1008'],
  ]);
  // sum above MAX_SAFE_INTEGER in an ED108 row: row rejected, ED108 sum check on raw values still consistent
  const ed108 = text1251('ED108_20251106_registry_cp1251.xml')
    .replace('TransactionSum="99999"', 'TransactionSum="9007199254740993"')
    .replace('Sum="1997734"', `Sum="${(1997734n - 99999n + 9007199254740993n).toString()}"`);
  r = parseUfebs(cp(ed108), 'x');
  t.is(r.payments.length, 4);
  t.like(r.rejected[0], { code: 'INVALID_SUM', ref: 'ED108/1102#5' });
});

test('caps: depth and text size', (t) => {
  const deep = '<a>'.repeat(40) + '</a>'.repeat(40);
  code(t, () => parseUfebs(Buffer.from(deep), 'x'), 'NOT_WELL_FORMED');
  const long = `<ED101 xmlns="urn:cbr-ru:ed:v2.0"><Purpose>${'x'.repeat(5000)}</Purpose></ED101>`;
  code(t, () => parseUfebs(Buffer.from(long), 'x'), 'NOT_WELL_FORMED');
});

// chunkChars applies to the streaming parser (the whole-file parser reads one string with the fast parser)
test('text is fed in chunks: tiny chunks give the same result', (t) => {
  for (const f of ['PacketEPD_20251105_cp1251.xml', 'PacketEPD_20251107_signed_ed-prefix.xml']) {
    const a = parseUfebs(read(f), 'x');
    const e = new UfebsStreamParser('emit', { chunkChars: 7 });
    e.write(read(f));
    e.end();
    t.deepEqual(e.take(), a.payments);
  }
});

test('a big indented PacketEPD: the whitespace between thousands of EDs is not text over the cap (bug found by the bench)', (t) => {
  const sample = text1251('PacketEPD_20251105_cp1251.xml');
  const ed = /<ED101 EDNo="1002"[\s\S]*?<\/ED101>\r?\n/.exec(sample)![0];
  const sum = Number(/Sum="(\d+)"/.exec(ed)![1]);
  const n = 2000; // 2000 × "\r\n    " between the EDs ≫ the 4096-character text cap
  const eds = Array.from({ length: n }, (_, i) => '    ' + ed.replace('EDNo="1002"', `EDNo="${5000 + i}"`)).join('');
  const xml = `<?xml version="1.0" encoding="windows-1251"?>\n<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDNo="4999" EDDate="2025-11-05" EDAuthor="4599101000" EDQuantity="${n}" Sum="${sum * n}">\n${eds}</PacketEPD>\n`;
  const r = parseUfebs(cp(xml), 'big.xml');
  t.is(r.payments.length, n);
  t.is(total(r), sum * n);
  // real text is still capped, also next to child elements
  const mixed = `<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDQuantity="1" Sum="1">${'x'.repeat(5000)}${ed}</PacketEPD>`;
  code(t, () => parseUfebs(Buffer.from(mixed), 'x'), 'NOT_WELL_FORMED');
});
