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
