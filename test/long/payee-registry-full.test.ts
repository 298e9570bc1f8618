import test from 'ava';
import { startHarness, waitFor, type Harness } from '../helpers/harness.ts';

// the simulator's default registry (20 000 organisations), fetched by the schedule: the cron matches every minute,
// so the bus starts a refresh at once
let h: Harness;
test.before(async () => {
  h = await startHarness('regfull', { 'payees.refresh.schedule': '* * * * *', 'payees.refresh.pageSize': 5000 });
});
test.after.always(async () => { await h?.close(); });

test('scheduled refresh of the default-size registry (20 000 organisations) through SMEV', async (t) => {
  const started = Date.now();
  const r = await waitFor(async () => {
    const [x] = await h.bus.store.query<{ status: string; trigger: string; records: number; pages: number; error: string | null; version_id: number | null }>(
      `SELECT status, trigger, records, pages, error, version_id FROM payee_refreshes ORDER BY id LIMIT 1`);
    return x && x.status !== 'running' ? x : undefined;
  }, 600_000, 'scheduled refresh');
  t.log(`20 000 organisations, ${r.records} requisites in ${r.pages} pages: ${Date.now() - started} ms`);
  t.is(r.status, 'done', r.error ?? '');
  t.is(r.trigger, 'schedule');
  t.is(r.records, h.sim.registry.keys().size);
  t.true(r.records > 20_000);
  // the bus switches to the new version right after the commit
  await waitFor(async () => h.bus.payees().versionId === r.version_id, 10_000, 'bus on the new version');
  t.is(h.bus.payees().size, r.records);
});
