import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, EXAMPLES } from './helpers/harness.ts';

const exec = promisify(execFile);
/** the CLI in this process (console captured): much cheaper than a node process per call */
async function run(_node: string, argv: string[], _o?: unknown): Promise<{ stdout: string; stderr: string }> {
  const { main } = await import('../gateway/cli.ts');
  const out: string[] = [], err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { err.push(a.join(' ')); };
  let code: number;
  try {
    code = await main(argv.slice(1));
  } finally {
    console.log = log;
    console.error = error;
  }
  const r = { stdout: out.join('\n'), stderr: err.join('\n') };
  if (code !== 0) throw Object.assign(new Error(`exit ${code}`), r, { code });
  return r;
}
const bin = join(ROOT, 'bin/gkh-bus.js');
const files = ['A_sber_tagged_cp1251.txt', 'B_hash-header_accrual-style_cp1251.txt', 'C_agent_header-row_utf8-bom.csv', 'ED101_20251106_utf8.xml',
  'ED108_20251106_registry_cp1251.xml', 'PacketEPD_20251105_cp1251.xml', 'PacketEPD_20251107_signed_ed-prefix.xml'].map((f) => join(EXAMPLES, 'inbox', f));

type Row = { file: string; index: number; amountKop: number; decision: string; form: string | null; els?: string; period?: string; reason: string };

test.serial('classify --json: every payment of the example files, the sample outcome (30 of 34 reportable, 23 145 247 kop in R∪I)', async (t) => {
  const { stdout } = await run('node', [bin, 'classify', ...files, '--payees', join(EXAMPLES, 'payees.csv'), '--json'], { cwd: ROOT });
  const rows = JSON.parse(stdout) as Row[];
  t.is(rows.length, 34);
  const rep = rows.filter((r) => r.decision === 'reportable');
  t.is(rep.length, 30);
  t.is(rep.reduce((s, r) => s + r.amountKop, 0), 23_145_247);
  t.true(rep.every((r) => r.form === 'full'));
  t.true(rows.filter((r) => r.decision === 'skipped').every((r) => r.form === null && /^not reportable/.test(r.reason)));
  const ed101 = rows.find((r) => r.file.endsWith('ED101_20251106_utf8.xml'))!;
  t.like(ed101, { index: 0, amountKop: 412050, decision: 'reportable', els: '90ЖК246810', period: '2025-10' });
  t.deepEqual(Object.keys(ed101), ['file', 'index', 'amountKop', 'decision', 'form', 'els', 'accountNumber', 'period', 'reason']);
});

test.serial('classify: the selection settings of the configuration change the decision; a bad file is reported, the others classified', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gkh-classify-'));
  try {
    // the payer typed the ЕЛС with a Latin K, no field 22, the payee is not in the registry
    const ed101 = readFileSync(join(EXAMPLES, 'inbox/ED101_20251106_utf8.xml'), 'utf8')
      .replace(' PaymentID="90ЖК246810"', '')
      .replace('PersonalAcc="40703810000030000417"', 'PersonalAcc="40703810700030000555"')
      .replace('за 10.2025, л/с 00417', 'ЕЛС 90ЖK246810 за 10.2025, абонент 00417');
    writeFileSync(join(dir, 'ED101_latin.xml'), ed101);
    writeFileSync(join(dir, 'bad.txt'), 'hello');
    const base = readFileSync(join(ROOT, 'config/bus.yaml'), 'utf8').replace('csvLayouts: csv-layouts.yaml', `csvLayouts: ${join(ROOT, 'config/csv-layouts.yaml')}`);
    writeFileSync(join(dir, 'default.yaml'), base);
    writeFileSync(join(dir, 'tuned.yaml'), base.replace('mapLatinLookalikes: false', "mapLatinLookalikes: true\n  accountMarkers: ['Л/С\\.?', 'АБОНЕНТ']"));
    const go = async (cfg: string) => JSON.parse((await run('node', [bin, 'classify', join(dir, 'ED101_latin.xml'), '--payees', join(EXAMPLES, 'payees.csv'), '--json', '--config', join(dir, cfg)], { cwd: ROOT })).stdout) as Row[];
    const [before] = await go('default.yaml');
    t.like(before, { decision: 'skipped', form: null, period: '2025-10' });
    t.is(before!.els, undefined);
    t.is((before as { accountNumber?: string }).accountNumber, undefined);
    t.regex(before!.reason, /is not in the payee registry and no ЖКУ identifier was found/);
    const [after] = await go('tuned.yaml');
    t.like(after, { decision: 'reportable', form: 'full', els: '90ЖК246810', accountNumber: '00417', period: '2025-10' });
    t.regex(after!.reason, /ЕЛС 90ЖК246810 in the purpose/);
    const e = await run('node', [bin, 'classify', join(dir, 'bad.txt'), join(dir, 'ED101_latin.xml'), '--payees', join(EXAMPLES, 'payees.csv'), '--config', join(dir, 'default.yaml')], { cwd: ROOT }).catch((x) => x);
    t.is(e.code, 1);
    t.regex(e.stderr, /bad\.txt: UNKNOWN_FORMAT/);
    t.regex(e.stdout, /1 payments: 0 reportable \(0 kop\), 1 skipped/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('classify without files prints the usage and exits 2; --help describes the JSON', async (t) => {
  const e = await exec('node', [bin, 'classify'], { cwd: ROOT }).catch((x) => x);
  t.is(e.code, 2);
  t.regex(e.stderr, /Usage: gkh-bus classify/);
  const h = await run('node', [bin, 'classify', '--help'], { cwd: ROOT });
  t.regex(h.stdout, /decision: "reportable"\|"skipped"/);
  const p = await run('node', [bin, 'payees', '--help'], { cwd: ROOT });
  t.regex(p.stdout, /Usage: gkh-bus payees refresh/);
});
