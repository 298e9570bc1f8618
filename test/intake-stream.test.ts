import test from 'ava';
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { parseUfebs } from '../transformers/ufebs/parse.ts';
import { UfebsStreamParser, NotStreamableError } from '../transformers/ufebs/stream.ts';
import { IntakeError } from '../transformers/payment.ts';

const SAMPLES = new URL('./fixtures/samples/ufebs/', import.meta.url).pathname;
const read = (f: string) => readFileSync(SAMPLES + f);

/** Runs both passes over `bytes` fed in pieces of `size` bytes. */
function stream(bytes: Buffer, size: number) {
  const v = new UfebsStreamParser('validate');
  for (let i = 0; i < bytes.length; i += size) v.write(bytes.subarray(i, i + size));
  const summary = v.end();
  const e = new UfebsStreamParser('emit');
  const payments = [];
  for (let i = 0; i < bytes.length; i += size) {
    e.write(bytes.subarray(i, i + size));
    if (e.pending >= 2) payments.push(...e.take());
  }
  const s2 = e.end();
  payments.push(...e.take());
  return { summary, payments, s2 };
}

test('streaming gives what the whole-file parser gives, whatever the chunk size', (t) => {
  for (const f of ['PacketEPD_20251105_cp1251.xml', 'PacketEPD_20251107_signed_ed-prefix.xml']) {
    const whole = parseUfebs(read(f), f);
    for (const size of [1, 7, 300, 1 << 20]) {
      const { summary, payments, s2 } = stream(read(f), size);
      t.deepEqual(payments, whole.payments, `${f} / ${size}`);
      t.deepEqual(summary.rejected, whole.rejected);
      t.deepEqual(summary.warnings, whole.warnings);
      t.is(summary.encoding as string, whole.encoding);
      t.is(s2.payments, whole.payments.length);
    }
  }
});

const packet = (eds: string, q: number, sum: number, enc = 'windows-1251') =>
  `<?xml version="1.0" encoding="${enc}"?>\n<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDNo="1" EDDate="2025-11-05" EDAuthor="4599101000" EDQuantity="${q}" Sum="${sum}">\n${eds}</PacketEPD>\n`;
const sampleEd = () => /<ED101 EDNo="1002"[\s\S]*?<\/ED101>\r?\n/.exec(iconv.decode(read('PacketEPD_20251105_cp1251.xml'), 'windows-1251'))![0];

function rejects(t: any, bytes: Buffer, code: string): IntakeError {
  const e = t.throws(() => stream(bytes, 64), { instanceOf: IntakeError }) as IntakeError;
  t.is(e.code, code, e.message);
  return e;
}

test('file-level problems are found by the validating pass, before anything is emitted', (t) => {
  const ed = sampleEd();
  const sum = Number(/Sum="(\d+)"/.exec(ed)![1]);
  // the count and sum are only known at the end of the file: the first pass finds them
  const e1 = rejects(t, iconv.encode(packet(ed + ed.replace('EDNo="1002"', 'EDNo="1003"'), 3, sum * 2), 'windows-1251'), 'COUNT_MISMATCH');
  t.regex(e1.message, /EDQuantity 3 ≠ 2 ED children/);
  const e2 = rejects(t, iconv.encode(packet(ed, 1, sum + 1), 'windows-1251'), 'SUM_MISMATCH');
  t.regex(e2.message, /packet Sum/);
  rejects(t, iconv.encode(packet(ed, 1, sum).replace('</PacketEPD>', ''), 'windows-1251'), 'NOT_WELL_FORMED');
  rejects(t, Buffer.from(packet(ed, 1, sum), 'utf8'), 'ENCODING_MISMATCH'); // UTF-8 bytes under a windows-1251 label
  rejects(t, Buffer.concat([Buffer.from(packet(ed, 1, sum, 'utf-8').slice(0, 400), 'utf8'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from(packet(ed, 1, sum, 'utf-8').slice(400), 'utf8')]), 'ENCODING_MISMATCH');
  rejects(t, Buffer.from(`<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "b">]>\n` + packet(ed, 1, sum, 'utf-8').replace(/^<\?xml[^>]*>\n/, '')), 'DTD_FORBIDDEN');
  rejects(t, Buffer.alloc(0), 'EMPTY_FILE');
  // and the same bytes are rejected by the whole-file parser with the same code
  t.is((t.throws(() => parseUfebs(iconv.encode(packet(ed, 1, sum + 1), 'windows-1251'), 'x')) as IntakeError).code, 'SUM_MISMATCH');
});

test('roots other than PacketEPD are not streamed (the caller parses them whole)', (t) => {
  const p = new UfebsStreamParser('validate');
  t.throws(() => { p.write(read('ED101_20251106_utf8.xml')); p.end(); }, { instanceOf: NotStreamableError });
});

// ------------------------------------------------------------------------- through the inbox, PostgreSQL and the simulator

import { copyFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, waitFor, SAMPLES as ROOT_SAMPLES, type Harness } from './helpers/harness.ts';

let h: Harness;
test.before(async () => { h = await startHarness('stream', { 'inbox.streamAboveBytes': 1000 }); });
test.after.always(async () => { await h?.close(); });

const fileRow = (name: string) => h.bus.store.query<{ id: number; status: string; reason: string | null; payments_added: number }>(
  'SELECT id, status, reason, payments_added FROM files WHERE name = $1 ORDER BY id DESC LIMIT 1', [name]).then((r) => r[0]);

test.serial('a failure in the emitting pass leaves nothing of the file: one transaction', async (t) => {
  const src = iconv.decode(read('PacketEPD_20251105_cp1251.xml'), 'windows-1251').replace(/EDNo="(\d+)"/g, (_, n) => `EDNo="${Number(n) + 70000}"`);
  const path = join(h.dir, 'atomic.xml');
  writeFileSync(path, iconv.encode(src, 'windows-1251'));
  // the database refuses the 5th payment of the file (the second chunk of 2 … the third)
  await h.bus.store.query(`CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
  await h.bus.store.query(`CREATE TRIGGER t_refuse BEFORE INSERT ON payments FOR EACH ROW WHEN (NEW.ref = 'ED101/71006') EXECUTE FUNCTION t_refuse()`);
  try {
    await t.throwsAsync(() => h.bus.intake.processFile(path, 'atomic.xml', 1, 'test', 2), { message: /refused by the test/ });
  } finally {
    await h.bus.store.query('DROP TRIGGER t_refuse ON payments');
  }
  const [n] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE ref LIKE 'ED101/710%'`);
  t.is(n.n, 0, 'no payment of the file was committed');
  t.falsy(await fileRow('atomic.xml'));
  // once the database takes it, the same file goes in whole
  const out = await h.bus.intake.processFile(path, 'atomic.xml', 1, 'test', 2);
  t.is(out?.status, 'ACCEPTED');
  t.is(out?.payments, 7);
});

test.serial('big files through the inbox: streamed in two passes, same outcome; a bad one is quarantined with nothing stored', async (t) => {
  copyFileSync(join(ROOT_SAMPLES, 'ufebs/PacketEPD_20251107_signed_ed-prefix.xml'), join(h.config.inbox.path, 'signed.xml'));
  const f = await waitFor(() => fileRow('signed.xml'), 20_000, 'file row');
  t.is(f.status, 'ACCEPTED');
  t.is(f.payments_added, 4);
  const ps = await waitFor(async () => {
    const r = await h.bus.store.query<{ status: string }>('SELECT status FROM payments WHERE file_id = $1', [f.id]);
    return r.every((p) => ['ACCEPTED', 'REJECTED', 'SKIPPED'].includes(p.status)) ? r : undefined;
  }, 90_000, 'final statuses');
  t.is(ps.filter((p) => p.status === 'SKIPPED').length, 1);
  t.is(ps.filter((p) => p.status === 'ACCEPTED' || p.status === 'REJECTED').length, 3);

  const bad = iconv.decode(read('PacketEPD_20251105_cp1251.xml'), 'windows-1251').replace(/EDNo="(\d+)"/g, (_, n) => `EDNo="${Number(n) + 80000}"`)
    .replace('Sum="25910927"', 'Sum="25910928"');
  writeFileSync(join(h.config.inbox.path, 'bad.xml.tmp'), iconv.encode(bad, 'windows-1251'));
  const { renameSync } = await import('node:fs');
  renameSync(join(h.config.inbox.path, 'bad.xml.tmp'), join(h.config.inbox.path, 'bad.xml'));
  const b = await waitFor(() => fileRow('bad.xml'), 20_000, 'bad file row');
  t.is(b.status, 'REJECTED');
  t.regex(b.reason!, /^SUM_MISMATCH at PacketEPD \(line 2\)/);
  const [n] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE ref LIKE 'ED101/810%'`);
  t.is(n.n, 0);
  await waitFor(async () => existsSync(join(h.config.inbox.quarantine, 'bad.xml.error.txt')), 10_000, 'error note');
  t.pass();
});

// ------------------------------------------------------------------------- CSV registries in streaming

import { createReadStream, readdirSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseCsv } from '../transformers/csv/parse.ts';
import { loadCsvLayouts } from '../transformers/csv/layout.ts';
import { CsvStreamParser, CsvEncodingRetry } from '../transformers/csv/stream.ts';

const CSV_DIR = new URL('./fixtures/samples/csv/', import.meta.url).pathname;
const LAYOUTS = loadCsvLayouts(readFileSync(new URL('../config/csv-layouts.yaml', import.meta.url), 'utf8'));

/** Both CSV passes over `bytes` fed in pieces of `size` bytes (head of `headBytes` for recognition). */
function streamCsv(bytes: Buffer, size: number, headBytes?: number) {
  const run = (mode: 'validate' | 'emit', opts: ConstructorParameters<typeof CsvStreamParser>[2]) => {
    const p = new CsvStreamParser(LAYOUTS, mode, { ...opts, ...(headBytes ? { headBytes } : {}) });
    const payments = [];
    for (let i = 0; i < bytes.length; i += size) {
      p.write(bytes.subarray(i, i + size));
      if (mode === 'emit' && p.pending >= 2) payments.push(...p.take());
    }
    const s = p.end();
    payments.push(...p.take());
    return { s, payments };
  };
  let v;
  try {
    v = run('validate', {});
  } catch (e) {
    if (!(e instanceof CsvEncodingRetry)) throw e;
    v = run('validate', { encoding: e.encoding });
  }
  t0(v.payments.length === 0);
  const e = run('emit', { layout: v.s.layout, encoding: v.s.encoding });
  return { summary: v.s, payments: e.payments, s2: e.s };
}
const t0 = (ok: boolean) => { if (!ok) throw new Error('the validating pass kept payments'); };

test('CSV streaming gives what the whole-file parser gives, for every sample layout and chunk size', (t) => {
  const files = readdirSync(CSV_DIR);
  t.is(files.length, 3);
  for (const f of files) {
    const bytes = readFileSync(CSV_DIR + f);
    const whole = parseCsv(bytes, f, LAYOUTS)!;
    t.truthy(whole.payments.length, f);
    for (const [size, head] of [[1, 16], [1, 400], [7, undefined], [300, 100], [1 << 20, undefined]] as const) {
      const { summary, payments, s2 } = streamCsv(bytes, size, head);
      t.deepEqual(payments, whole.payments, `${f} / ${size}`);
      t.deepEqual(summary.rejected, whole.rejected, `${f} / ${size}`);
      t.deepEqual(summary.warnings, whole.warnings);
      t.is(summary.format, whole.format);
      t.is(summary.encoding as string, whole.encoding);
      t.is(s2.payments, whole.payments.length);
    }
  }
});

test('CSV streaming: footer / totals problems are found by the validating pass with the whole-file reason', (t) => {
  const b = iconv.decode(readFileSync(CSV_DIR + 'B_hash-header_accrual-style_cp1251.txt'), 'windows-1251');
  for (const [text, code] of [
    [b.replace(/ИТОГО;5;/, 'ИТОГО;6;'), 'COUNT_MISMATCH'],
    [b.replace(/ИТОГО;5;14692\.60/, 'ИТОГО;5;14692.61'), 'SUM_MISMATCH'],
    [b.replace(/\r?\nИТОГО;5;14692\.60\r?\n?$/, '\n'), 'CSV_MALFORMED'],
  ] as const) {
    const bytes = iconv.encode(text, 'windows-1251');
    const whole = t.throws(() => parseCsv(bytes, 'b.txt', LAYOUTS), { instanceOf: IntakeError }) as IntakeError;
    const streamed = t.throws(() => streamCsv(bytes, 5, 32), { instanceOf: IntakeError }) as IntakeError;
    t.is(whole.code, code, whole.message);
    t.is(streamed.message, whole.message);
  }
  // an unknown head is not streamed: the caller parses the file whole (and rejects it as UNKNOWN_FORMAT)
  t.throws(() => streamCsv(Buffer.from('hello;world\n1;2\n'), 4), { instanceOf: NotStreamableError });
});

test('CSV streaming: an ASCII head with UTF-8 further down is decoded as the whole file would be', (t) => {
  // layout A (ASCII HEADER line) with a UTF-8 CLIENTNO further down
  const a = iconv.decode(readFileSync(CSV_DIR + 'A_sber_tagged_cp1251.txt'), 'windows-1251');
  const bytes = Buffer.from(a.replace(/CLIENTNO:([^;\r\n]*)/, 'CLIENTNO:$1Ж'), 'utf8');
  const whole = parseCsv(bytes, 'a.txt', LAYOUTS)!;
  const { summary, payments } = streamCsv(bytes, 10, 16);
  t.is(summary.encoding as string, whole.encoding);
  t.deepEqual(payments, whole.payments);
  // layout B in UTF-8 without BOM, ASCII first line: the ИТОГО line only reads right once decoded as UTF-8
  const b = Buffer.from(iconv.decode(readFileSync(CSV_DIR + 'B_hash-header_accrual-style_cp1251.txt'), 'windows-1251').replace(/\s*$/, '\r\n\r\n\r\n'), 'utf8');
  const wb = parseCsv(b, 'b.txt', LAYOUTS)!;
  t.is(wb.encoding, 'utf-8');
  const sb = streamCsv(b, 10, 16);
  t.is(sb.summary.encoding as string, 'utf-8');
  t.deepEqual(sb.payments, wb.payments);
});

test.serial('CSV registries through the inbox: streamed, same payments as the whole-file parser; a totals mismatch is quarantined with nothing stored', async (t) => {
  for (const f of readdirSync(CSV_DIR)) {
    const whole = parseCsv(readFileSync(CSV_DIR + f), f, LAYOUTS)!;
    const name = `stream-${f}`;
    copyFileSync(CSV_DIR + f, join(h.config.inbox.path, name));
    const row = await waitFor(() => fileRow(name), 20_000, `file row ${name}`);
    t.is(row.status, 'ACCEPTED', row.reason ?? '');
    const ps = await h.bus.store.query<{ source_key: string; amount_kop: string; location: string }>(
      'SELECT source_key, amount_kop::text, location FROM payments WHERE file_id = $1 ORDER BY id', [row.id]);
    t.deepEqual(ps.map((p) => [p.source_key, Number(p.amount_kop), p.location]), whole.payments.map((p) => [p.sourceKey, p.amountKop, p.location]), f);
  }
  const b = iconv.decode(readFileSync(CSV_DIR + 'B_hash-header_accrual-style_cp1251.txt'), 'windows-1251')
    .replace(/000000812(\d{3})/g, '000000999$1').replace(/ИТОГО;5;14692\.60/, 'ИТОГО;5;14692.61');
  const bytes = iconv.encode(b, 'windows-1251');
  const reason = (t.throws(() => parseCsv(bytes, 'x', LAYOUTS)) as IntakeError).message;
  const { renameSync } = await import('node:fs');
  writeFileSync(join(h.config.inbox.path, 'bad-b.txt.tmp'), bytes);
  renameSync(join(h.config.inbox.path, 'bad-b.txt.tmp'), join(h.config.inbox.path, 'bad-b.txt'));
  const r = await waitFor(() => fileRow('bad-b.txt'), 20_000, 'bad file row');
  t.is(r.status, 'REJECTED');
  t.is(r.reason, reason);
  t.regex(reason, /^SUM_MISMATCH at line \d+/);
  const [n] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE source_key LIKE '%:000000999%'`);
  t.is(n.n, 0);
  await waitFor(async () => existsSync(join(h.config.inbox.quarantine, 'bad-b.txt.error.txt')), 10_000, 'error note');
});

test.serial('a CSV of 50,000 rows streams with a bounded heap increase', async (t) => {
  const header = 'Дата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\n';
  const sample = readFileSync(CSV_DIR + 'C_agent_header-row_utf8-bom.csv').toString('utf8').split(/\r?\n/)[2]!.split(';');
  const path = join(h.dir, 'big-c.csv');
  const N = 50_000;
  const parts: string[] = ['\uFEFF' + header];
  for (let i = 0; i < N; i++) {
    parts.push(`06.11.2025;10:16:40;BIG-${String(i).padStart(6, '0')};"Плательщик номер ${i}, длинное имя для объёма";${sample[4]};${sample[5]};${sample[6]};"Оплата услуг связи по договору № ${i}; период 10.2025";${(i % 900) + 1},${String(i % 100).padStart(2, '0')};0,00\n`);
  }
  writeFileSync(path, parts.join(''));
  parts.length = 0;
  const size = statSync(path).size;
  t.true(size > 5_000_000, `${size} bytes`);
  // retained heap, sampled after a full GC every 30 chunks (garbage is not what "bounded" is about)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  let calls = 0;
  const sampleHeap = () => {
    if (++calls % 30) return;
    gc();
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  };
  const v = new CsvStreamParser(LAYOUTS, 'validate');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 16 })) { v.write(c as Buffer); sampleHeap(); }
  const s = v.end();
  t.is(s.payments, N);
  t.is(s.rejected.length, 0);
  const e = new CsvStreamParser(LAYOUTS, 'emit', { layout: s.layout, encoding: s.encoding });
  let n = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 16 })) {
    e.write(c as Buffer);
    if (e.pending >= 1000) n += e.take().length;
    sampleHeap();
  }
  e.end();
  n += e.take().length;
  t.is(n, N);
  // the file is > 5 MB and 50,000 kept payments would take tens of MB; the streamed passes hold one chunk at a time
  t.true(peak - before < 16 * 1024 * 1024, `heap grew by ${Math.round((peak - before) / 1048576)} MB`);
  t.log(`file ${Math.round(size / 1048576)} MB, heap peak +${Math.round((peak - before) / 1048576)} MB`);
});
