import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { startHarness, waitFor, ROOT, type Harness } from './helpers/harness.ts';
import { parsePayeesCsv } from '../transformers/classify/payees.ts';

let h: Harness;
let base: string;
const ORGS = 52;
test.before(async () => {
  h = await startHarness('registry', { 'payees.refresh.pageSize': 30, 'payees.outbox': '/tmp/placeholder' }, { startBus: false, sim: { registry: { organizations: ORGS, seed: 7 } } });
  const { startBus } = await import('../gateway/bus.ts');
  h.config.payees.outbox = join(h.dir, 'abs-outbox');
  h.bus = await startBus(h.config, { log: h.log });
  base = `http://127.0.0.1:${h.bus.adminPort}`;
});
test.after.always(async () => { await h?.bus?.stop(); await h?.close(); });
const auth = () => ({ authorization: `Bearer ${h.config.admin.token}` });
const get = async (path: string) => {
  const r = await fetch(`${base}${path}`, { headers: auth() });
  return { status: r.status, type: r.headers.get('content-type'), body: r.headers.get('content-type')?.includes('json') ? await r.json() : Buffer.from(await r.arrayBuffer()) };
};
type Refresh = { id: number; status: string; error: string | null; versionId: number | null; pages: number; records: number };
async function refreshAndWait(): Promise<Refresh> {
  const r = await fetch(`${base}/api/v1/payees/refresh`, { method: 'POST', headers: auth() });
  if (r.status !== 202) throw new Error(`refresh answered ${r.status}: ${await r.text()}`);
  const { id } = await r.json();
  return waitFor(async () => {
    const x = (await get(`/api/v1/payees/refreshes/${id}`)).body as Refresh;
    return x.status !== 'running' ? x : undefined;
  }, 90_000, `refresh ${id}`);
}
type Rec = { bic: string; account: string; guid: string; bankName: string; updatedAt: string };
const keyed = (items: Rec[]) => new Map(items.map((r) => [`${r.bic}/${r.account}`, r]));

test.serial('on-demand refresh through SMEV: all pages, a new current version with its diff, the АБС outbox file', async (t) => {
  const before = (await get('/api/v1/payees')).body;
  t.is(before.version.records, 8); // examples/payees.csv, loaded at start
  const r = await refreshAndWait();
  t.is(r.status, 'done', r.error ?? '');
  const expectedReqs = h.sim.registry.keys().size;
  t.is(r.pages, Math.ceil((ORGS + 8) / 30));
  t.is(r.records, expectedReqs);
  const versions = (await get('/api/v1/payees/versions')).body as { id: number; records: number; added: number; changed: number; removed: number; previousId: number; current: boolean }[];
  const v = versions[0]!;
  t.true(v.current);
  t.is(v.previousId, before.version.id);
  t.is(v.records, expectedReqs);
  t.deepEqual([v.added, v.changed, v.removed], [expectedReqs - 8, 0, 0]); // the 8 sample payees are part of the ГИС registry, unchanged
  t.is(h.bus.payees().versionId, v.id, 'new payments are classified against the new version');
  // the previous version stays readable
  const old = (await get(`/api/v1/payees?version=${before.version.id}`)).body;
  t.is(old.total, 8);
  // the outbox file: complete, windows-1251, loadable again, no temporary file left behind
  const dir = h.config.payees.outbox!;
  await waitFor(async () => existsSync(join(dir, `payees_v${v.id}.csv`)), 5000, 'outbox file');
  t.deepEqual(readdirSync(dir), [`payees_v${v.id}.csv`]);
  const bytes = readFileSync(join(dir, `payees_v${v.id}.csv`));
  t.true(iconv.decode(bytes, 'win1251').startsWith('ОГРН;ИНН;КПП;'));
  const back = parsePayeesCsv(bytes, 'outbox.csv');
  t.deepEqual(back.rejected, []);
  t.is(back.records.length, expectedReqs);
});

test.serial('a second refresh sees ГИС changes: added, changed and removed are recorded exactly', async (t) => {
  const prev = (await get('/api/v1/payees?limit=1000')).body;
  const r = await refreshAndWait();
  t.is(r.status, 'done', r.error ?? '');
  const cur = (await get('/api/v1/payees?limit=1000')).body;
  t.is(cur.version.previousId, prev.version.id);
  const a = keyed(prev.items), b = keyed(cur.items);
  const added = [...b.keys()].filter((k) => !a.has(k)).sort();
  const removed = [...a.keys()].filter((k) => !b.has(k)).sort();
  const changed = [...b.keys()].filter((k) => a.has(k) && JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k))).sort();
  t.true(added.length > 0 && removed.length > 0 && changed.length > 0);
  t.deepEqual([cur.version.added, cur.version.changed, cur.version.removed], [added.length, changed.length, removed.length]);
  const diff = (await get(`/api/v1/payees/versions/${cur.version.id}/changes`)).body as { change: string; bic: string; account: string }[];
  const of = (c: string) => diff.filter((x) => x.change === c).map((x) => `${x.bic}/${x.account}`).sort();
  t.deepEqual(of('added'), added);
  t.deepEqual(of('removed'), removed);
  t.deepEqual(of('changed'), changed);
});

test.serial('a payment to a payee only the downloaded registry knows is selected by it; its history names the record and version', async (t) => {
  const cur = (await get('/api/v1/payees?limit=1000')).body as { version: { id: number }; items: (Rec & { inn: string; kpp: string; name: string })[] };
  const p = cur.items.find((x) => x.bic === '044525225' && x.kpp)!; // a generated payee (not in examples/payees.csv)
  t.truthy(p);
  const ed101 = readFileSync(join(ROOT, 'examples/inbox/ED101_20251106_utf8.xml'), 'utf8')
    .replace(' PaymentID="90ЖК246810"', '').replace('EDNo="1101"', 'EDNo="7101"')
    .replace('PersonalAcc="40703810000030000417" INN="9909930916" KPP="990901001"', `PersonalAcc="${p.account}" INN="${p.inn}" KPP="${p.kpp}"`)
    .replace('<Bank BIC="044599303" CorrespAcc="30101810145990000303"/>', '<Bank BIC="044525225" CorrespAcc="30101810400000000225"/>')
    .replace('л/с 00417', 'оплата по договору');
  const r = await fetch(`${base}/api/v1/files?name=ED101_generated.xml`, { method: 'POST', headers: auth(), body: ed101 });
  t.is(r.status, 201, await r.clone().text());
  const [pay] = await h.bus.store.query<{ id: number }>(`SELECT id FROM payments WHERE ref LIKE '%7101%'`);
  const hist = (await get(`/api/payments/${pay!.id}`)).body as { status: string; payee_version_id: number; history: { status: string; detail: Record<string, unknown> }[] };
  t.is(hist.payee_version_id, cur.version.id);
  const decision = hist.history.find((e) => e.status === 'REPORTABLE')!;
  t.deepEqual(decision.detail.rules, ['registry-match']);
  t.deepEqual(decision.detail.registry, { guid: p.guid, versionId: cur.version.id });
  t.deepEqual(decision.detail.identifiers, { period: '2025-10' });
  t.regex(decision.detail.reason as string, new RegExp(`${p.bic}/${p.account} is in the payee registry \\(guid ${p.guid}`));
  // the simulated ГИС knows the payees of the registry it exported: the notification is accepted
  await waitFor(async () => {
    const [x] = await h.bus.store.query<{ status: string }>('SELECT status FROM payments WHERE id = $1', [pay!.id]);
    return x!.status === 'ACCEPTED';
  }, 60_000, 'payment accepted');
  const stats = (await get('/api/stats')).body as { payeeRegistry: { currentVersion: number; records: number; lastRefresh: { status: string } } };
  t.like(stats.payeeRegistry, { currentVersion: cur.version.id, lastRefresh: { status: 'done' } });
});

test.serial('a failed page never replaces the current version; the attempt is recorded', async (t) => {
  const cur = (await get('/api/v1/payees')).body;
  h.sim.registry.failPage(2);
  const r = await refreshAndWait();
  t.is(r.status, 'failed');
  t.regex(r.error ?? '', /page 2: ГИС answered EXP001000/);
  t.is(r.versionId, null);
  const after = (await get('/api/v1/payees')).body;
  t.is(after.version.id, cur.version.id);
  t.is(h.bus.payees().versionId, cur.version.id);
  const detail = (await get(`/api/v1/payees/refreshes/${r.id}`)).body as { pageRequests: { page: number; status: string }[] };
  t.deepEqual(detail.pageRequests.map((p) => p.status), ['received', 'failed']);
});

test.serial('a partial download (a page short of an organisation) is detected by the export totals: no new version', async (t) => {
  const cur = (await get('/api/v1/payees')).body;
  h.sim.registry.truncatePage(1);
  // through the CLI command (`gkh-bus payees refresh --wait`), which calls the running bus
  const { runPayeesRefresh } = await import('../gateway/classify-cli.ts');
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { out.push(a.join(' ')); };
  let code: number;
  try {
    code = await runPayeesRefresh({ ...h.config, admin: { ...h.config.admin, port: h.bus.adminPort! } }, true);
  } finally {
    console.log = log;
  }
  t.is(code, 1);
  t.regex(out.join('\n'), /refresh \d+ started\nrefresh \d+: failed, \d+ pages, \d+ records: .*announced/);
  const r = ((await get('/api/v1/payees/refreshes')).body as Refresh[])[0]!;
  t.is(r.status, 'failed');
  t.regex(r.error ?? '', /announced \d+ requisites, \d+ arrived/);
  t.is((await get('/api/v1/payees')).body.version.id, cur.version.id);
});

test.serial('the cron schedule starts a refresh in a matching minute; one refresh at a time; a scheduled slot runs once whatever the number of instances', async (t) => {
  const { parseCron } = await import('../transformers/cron.ts');
  const before = ((await get('/api/v1/payees/refreshes')).body as Refresh[]).length;
  if (new Date().getUTCSeconds() >= 57) await new Promise((r) => setTimeout(r, 4000));
  const now = new Date();
  // a cron for this very minute (UTC): the first check starts one now, later checks in this minute do not
  h.bus.registry.schedule(parseCron(`${now.getUTCMinutes()} ${now.getUTCHours()} * * *`), true);
  const started = await waitFor(async () => {
    const list = (await get('/api/v1/payees/refreshes')).body as (Refresh & { trigger: string; slot: string })[];
    return list.length > before ? list[0] : undefined;
  }, 30_000, 'scheduled refresh started');
  // while it runs, another one is refused
  const busy = await fetch(`${base}/api/v1/payees/refresh`, { method: 'POST', headers: auth() });
  t.is(busy.status, 409);
  t.is(busy.headers.get('content-type'), 'application/problem+json');
  const r = await waitFor(async () => {
    const x = (await get(`/api/v1/payees/refreshes/${started.id}`)).body as Refresh & { trigger: string; slot: string };
    return x.status !== 'running' ? x : undefined;
  }, 90_000, 'scheduled refresh end');
  h.bus.registry.stop();
  t.is(r.trigger, 'schedule');
  t.is(new Date(r.slot).getUTCSeconds(), 0);
  t.is(r.status, 'done', r.error ?? '');
  // the same slot again (another instance, same minute): skipped
  const again = await h.bus.registry.refresh('schedule', new Date(r.slot));
  t.is(again.status, 'skipped');
});

test.serial('GET /api/v1/payees filters and pages; payees.csv in UTF-8 or windows-1251; bad filters are 400 problems', async (t) => {
  const all = (await get('/api/v1/payees?limit=1000')).body as { total: number; items: (Rec & { inn: string; capitalRepair: boolean })[] };
  const one = all.items.find((x) => x.capitalRepair)!;
  const byInn = (await get(`/api/v1/payees?inn=${one.inn}`)).body;
  t.true(byInn.items.length >= 1);
  t.true(byInn.items.every((x: { inn: string }) => x.inn === one.inn));
  const exact = (await get(`/api/v1/payees?bic=${one.bic}&account=${one.account}`)).body;
  t.is(exact.total, 1);
  const cap = (await get('/api/v1/payees?capitalRepair=true&limit=1000')).body;
  t.is(cap.total, all.items.filter((x) => x.capitalRepair).length);
  const since = [...all.items].sort((x, y) => Date.parse(y.updatedAt) - Date.parse(x.updatedAt))[4]!.updatedAt;
  const recent = (await get(`/api/v1/payees?updatedSince=${encodeURIComponent(since)}&limit=1000`)).body;
  t.is(recent.total, all.items.filter((x) => Date.parse(x.updatedAt) >= Date.parse(since)).length);
  const page2 = (await get('/api/v1/payees?limit=10&offset=10')).body;
  t.deepEqual(page2.items.map((x: Rec) => x.guid), all.items.slice(10, 20).map((x) => x.guid));
  const utf = await get('/api/v1/payees.csv?encoding=utf-8');
  t.is(utf.type, 'text/csv; charset=utf-8');
  t.is(parsePayeesCsv(utf.body as Buffer, 'x.csv').records.length, all.total);
  const cp = await get(`/api/v1/payees.csv?encoding=windows-1251&inn=${one.inn}`);
  t.is(cp.type, 'text/csv; charset=windows-1251');
  t.true(iconv.decode(cp.body as Buffer, 'win1251').includes(one.account));
  t.is(parsePayeesCsv(cp.body as Buffer, 'x.csv').records.length, byInn.total);
  for (const bad of ['inn=123', 'bic=44525225', 'capitalRepair=yes', 'updatedSince=yesterday', 'limit=0', 'limit=5000']) {
    const r = await get(`/api/v1/payees?${bad}`);
    t.is(r.status, 400, bad);
    t.is(r.type, 'application/problem+json');
  }
  t.is((await get('/api/v1/payees.csv?encoding=koi8-r')).status, 400);
  t.is((await get('/api/v1/payees?version=999999')).status, 404);
});

test.serial('a restart with the same registry CSV keeps the version downloaded from ГИС (bug: the CSV replaced it at every start)', async (t) => {
  const cur = (await get('/api/v1/payees')).body as { version: { id: number; source: string } };
  t.regex(cur.version.source, /^smev:/);
  const { startBus } = await import('../gateway/bus.ts');
  await h.bus.stop();
  h.bus = await startBus(h.config, { log: h.log });
  base = `http://127.0.0.1:${h.bus.adminPort}`;
  const after = (await get('/api/v1/payees')).body as { version: { id: number } };
  t.is(after.version.id, cur.version.id);
  t.is(h.bus.payees().versionId, cur.version.id);
});
