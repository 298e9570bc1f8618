import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, SAMPLES } from './helpers/harness.ts';

const run = promisify(execFile);

test('demo --files <dir> --json: the samples match their expected outcomes; bad files and bad records are reported, nothing stops', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gkh-demo-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['ufebs', 'csv']) for (const f of readdirSync(join(SAMPLES, sub))) copyFileSync(join(SAMPLES, sub, f), join(dir, f));
  for (const f of readdirSync(join(ROOT, 'test/fixtures/bad-input'))) copyFileSync(join(ROOT, 'test/fixtures/bad-input', f), join(dir, f));
  // the same content twice under another name
  copyFileSync(join(SAMPLES, 'ufebs/ED101_20251106_utf8.xml'), join(dir, 'ED101_copy.dat'));
  // one record with a payee INN that fails its check digits: that record is rejected, the rest of its file flows
  const bad = readFileSync(join(SAMPLES, 'csv/C_agent_header-row_utf8-bom.csv'), 'utf8')
    .replace(/A-20251106-0001;([^;]*);9909630905/, 'Z-1;$1;9909630906').replace(/A-20251106-000(\d)/g, 'Z-$1');
  writeFileSync(join(dir, 'C_with_bad_inn.csv'), bad);

  const { stdout } = await run(process.execPath, [join(ROOT, 'bin/gkh-bus.js'), 'demo', '--files', dir, '--json', '--timeout', '120'], { cwd: ROOT, timeout: 150_000, maxBuffer: 1 << 24 });
  const s = JSON.parse(stdout);
  const f = Object.fromEntries(s.files.map((x: { name: string }) => [x.name, x]));
  const expect = (name: string, payments: number, reportable: number, skipped: number) => {
    t.like(f[name], { status: 'done', payments, reportable, skipped }, name);
  };
  // shared/data/samples/README.md, mode R ∪ I
  expect('PacketEPD_20251105_cp1251.xml', 7, 5, 2);
  expect('ED101_20251106_utf8.xml', 1, 1, 0);
  expect('ED108_20251106_registry_cp1251.xml', 5, 5, 0);
  expect('PacketEPD_20251107_signed_ed-prefix.xml', 4, 3, 1);
  expect('A_sber_tagged_cp1251.txt', 6, 6, 0);
  expect('B_hash-header_accrual-style_cp1251.txt', 5, 5, 0);
  expect('C_agent_header-row_utf8-bom.csv', 6, 5, 1);
  // duplicate content adds nothing
  t.like(f['ED101_copy.dat'], { status: 'done', payments: 0 });
  t.regex(f['ED101_copy.dat'].reason, /DUPLICATE_FILE/);
  // bad files: rejected with the rule broken
  t.like(f['notes.txt'], { status: 'rejected' });
  t.regex(f['notes.txt'].reason, /UNKNOWN_FORMAT/);
  t.regex(f['empty.xml'].reason, /EMPTY_FILE/);
  t.regex(f['doctype.xml'].reason, /DTD_FORBIDDEN/);
  t.regex(f['utf8-labelled-1251.xml'].reason, /ENCODING_MISMATCH/);
  t.regex(f['truncated.xml'].reason, /NOT_WELL_FORMED/);
  // the bad record is rejected, its five neighbours flow (as new documents: other operation numbers)
  t.like(f['C_with_bad_inn.csv'], { status: 'done', payments: 5, recordsRejected: 1 });

  t.is(s.payments.received, 34 + 5);
  t.is(s.payments.skipped, 4 + 1);
  t.is(s.payments.accepted + s.payments.rejected + s.payments.invalid, s.payments.reportable);
  t.true(s.payments.accepted >= 28);
  t.is(s.packets.rejected, 0);
  t.true(Number.isInteger(s.durationMs));
});
