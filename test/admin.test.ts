import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, waitFor, SAMPLES, type Harness } from './helpers/harness.ts';

let h: Harness;
let base: string;
test.before(async () => {
  h = await startHarness('admin');
  base = `http://127.0.0.1:${h.bus.adminPort}`;
});
test.after.always(async () => { await h?.close(); });
const auth = () => ({ authorization: `Bearer ${h.config.admin.token}` });

test.serial('/health is open; /api needs the bearer token and answers problem JSON', async (t) => {
  const health = await fetch(`${base}/health`);
  t.is(health.status, 200);
  t.like(await health.json(), { status: 'ok', database: true, broker: true });
  const r = await fetch(`${base}/api/stats`);
  t.is(r.status, 401);
  t.is(r.headers.get('content-type'), 'application/problem+json');
  t.like(await r.json(), { status: 401, title: 'Unauthorized' });
});

test.serial('POST /api/v1/files takes a file like the inbox does; bad requests get 4xx problem JSON', async (t) => {
  const noName = await fetch(`${base}/api/v1/files`, { method: 'POST', headers: auth(), body: 'x' });
  t.is(noName.status, 400);
  t.regex((await noName.json()).detail, /name=/);
  const bad = await fetch(`${base}/api/v1/files?name=bad.txt`, { method: 'POST', headers: auth(), body: 'hello' });
  t.is(bad.status, 422);
  t.regex((await bad.json()).detail, /UNKNOWN_FORMAT/);
  const ok = await fetch(`${base}/api/v1/files?name=ED108.xml`, { method: 'POST', headers: auth(), body: readFileSync(join(SAMPLES, 'ufebs/ED108_20251106_registry_cp1251.xml')) });
  t.is(ok.status, 201);
  t.like(await ok.json(), { status: 'ACCEPTED', payments: 5, reportable: 5 });
  await waitFor(async () => {
    const [r] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE status = 'ACCEPTED'`);
    return r.n === 5;
  }, 30_000, 'accepted');
});

test.serial('/api/stats, /api/routes and a payment history', async (t) => {
  const s = await (await fetch(`${base}/api/stats`, { headers: auth() })).json();
  t.is(s.payments.ACCEPTED, 5);
  t.is(s.files.ACCEPTED, 1);
  t.is(s.files.REJECTED, 1);
  t.true(typeof s.queues[`${h.config.broker.prefix}.payments`].messages === 'number');
  const routes = await (await fetch(`${base}/api/routes`, { headers: auth() })).json();
  t.deepEqual(routes.routes.map((r: { name: string }) => r.name), ['files', 'payments', 'packets']);
  const [p] = await h.bus.store.query<{ id: number }>('SELECT id FROM payments ORDER BY id LIMIT 1');
  const hist = await (await fetch(`${base}/api/payments/${p.id}`, { headers: auth() })).json();
  t.deepEqual(hist.history.map((e: { status: string }) => e.status), ['RECEIVED', 'REPORTABLE', 'PACKED', 'SENT', 'ACCEPTED']);
  t.is((await fetch(`${base}/api/payments/abc`, { headers: auth() })).status, 400);
  t.is((await fetch(`${base}/api/payments/999999`, { headers: auth() })).status, 404);
});
