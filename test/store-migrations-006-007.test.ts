/**
 * Migrations 006 (HOT updates of payments) and 007 (lz4 for the SMEV XML) on a database that already holds data, and
 * the statements it changed: the sweeper's query (partial index payments_unpacked) and the poller's result
 * update (per-transport-id lookup instead of a join), with the same event details as before.
 */
import test from 'ava';
import { v4 as uuidv4 } from 'uuid';
import { openStore, dropDatabase, migrate, type Store } from '../connectors/store/db.ts';
import { migrations } from '../connectors/store/migrations.ts';
import { createLogger } from '../connectors/log.ts';
import { Poller } from '../routes/poller.ts';
import { Sweeper } from '../routes/sweeper.ts';
import { uniqueName } from './helpers/harness.ts';

const log = createLogger({ level: 'error' });

async function freshDbBefore006(): Promise<{ store: Store; url: string }> {
  const url = `postgres://postgres@127.0.0.1:5432/${uniqueName('gkh_t_mig006').toLowerCase()}`;
  // an "existing" database: the migrations before 006 applied, then data written, then the bus upgraded
  const all = migrations.splice(0);
  migrations.push(...all.filter((m) => m.id < '006'));
  let store: Store;
  try {
    store = await openStore(url, { pool: 2 });
  } finally {
    migrations.splice(0, migrations.length, ...all);
  }
  return { store, url };
}

async function seed(store: Store): Promise<{ fileId: number; packetId: number; messageId: string; ids: Record<string, number>; tids: Record<string, string> }> {
  const [f] = await store.query<{ id: number }>(`INSERT INTO files (name, sha256, size, status) VALUES ('a.xml', repeat('a', 64), 1, 'ACCEPTED') RETURNING id`);
  const messageId = uuidv4();
  const [pk] = await store.query<{ id: number }>(
    `INSERT INTO packets (message_id, status, schema_version, items) VALUES ($1, 'SENT', 'payments-1.0.0', 3) RETURNING id`, [messageId]);
  const ids: Record<string, number> = {};
  const tids: Record<string, string> = {};
  const row = async (key: string, status: string, order: string | null, packet: number | null) => {
    const tid = packet ? uuidv4() : null;
    const [r] = await store.query<{ id: number }>(
      `INSERT INTO payments (source_key, file_id, ref, location, kind, amount_kop, payment_date, purpose, payer, payee, status, reason,
                             order_id, transport_id, packet_id, updated_at)
       VALUES ($1, $2, $1, 'l', 'ED101', 100, '2025-11-05', 'p', '{}', '{}', $3, 'r', $4, $5, $6, now() - interval '1 hour') RETURNING id`,
      [key, f.id, status, order, tid, packet]);
    ids[key] = r.id;
    if (tid) tids[key] = tid;
  };
  await row('ok', 'SENT', 'o'.repeat(32), pk.id);
  await row('bad', 'SENT', 'b'.repeat(32), pk.id);
  await row('missing', 'SENT', 'm'.repeat(32), pk.id);
  await row('waiting', 'REPORTABLE', 'w'.repeat(32), null);
  await row('skipped', 'SKIPPED', null, null);
  await row('invalid', 'INVALID', 'i'.repeat(32), null);
  return { fileId: f.id, packetId: pk.id, messageId, ids, tids };
}

test('006 and 007 apply on an existing database; sweeper and result update keep their behaviour', async (t) => {
  const { store, url } = await freshDbBefore006();
  try {
    const s = await seed(store);
    await store.query(`INSERT INTO smev_messages (direction, operation, status, request_xml) VALUES ('out', 'SendRequest', 'ok', $1)`,
      ['<x>' + 'a'.repeat(100_000) + '</x>']);

    await migrate(store, log);
    const idx = (await store.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE tablename = 'payments'`)).map((r) => r.indexname);
    t.false(idx.includes('payments_status'));
    t.true(idx.includes('payments_unpacked'));
    const [rel] = await store.query<{ reloptions: string[] }>(`SELECT reloptions FROM pg_class WHERE relname = 'payments'`);
    t.deepEqual(rel.reloptions, ['fillfactor=50']);
    const comp = await store.query<{ attname: string; attcompression: string }>(
      `SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'smev_messages'::regclass AND attname IN ('request_xml', 'response_xml') ORDER BY attname`);
    t.deepEqual(comp.map((c) => c.attcompression), ['l', 'l'], 'lz4 (this server has it)');
    // data written before the migration is intact and readable
    const [old] = await store.query<{ n: number }>(`SELECT length(request_xml)::int AS n FROM smev_messages`);
    t.is(old.n, 100_007);
    const [cnt] = await store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments`);
    t.is(cnt.n, 6);
    // migrating again is a no-op
    await migrate(store, log);

    // the sweeper re-announces exactly the stale REPORTABLE payment, through the partial index
    const announced: number[] = [];
    const sweeper = new Sweeper({ store, log, staleMs: 60_000, publishPayments: async (ids) => { announced.push(...ids); }, publishPacket: async () => {} });
    await sweeper.sweep();
    t.deepEqual(announced, [s.ids.waiting]);
    await store.query('SET enable_seqscan = off');
    const plan = (await store.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT id FROM payments WHERE packet_id IS NULL AND order_id IS NOT NULL AND status = 'REPORTABLE' AND updated_at < now() ORDER BY id`))
      .map((r) => r['QUERY PLAN']).join('\n');
    await store.query('RESET enable_seqscan');
    t.regex(plan, /payments_unpacked/);

    // results: accepted, rejected with ГИС's codes, and a sent item without a result → MISSING_RESULT
    const poller = new Poller({ store, log, client: undefined as never, minMs: 10, maxMs: 10, publishPacket: async () => {}, publishPayments: async () => {} });
    const apply = (poller as unknown as { apply(r: unknown): Promise<unknown> }).apply.bind(poller);
    const { buildImportResult } = await import('../transformers/gis/result.ts');
    const content = buildImportResult({ results: [
      { transportId: s.tids.ok.toUpperCase(), success: { id: 'GIS-1', updateDate: '2025-11-06T10:00:00+03:00' } },
      { transportId: s.tids.bad, errors: [{ code: 'INT002000', description: 'нет' }, { code: 'FMT001301', description: 'формат' }] },
      { transportId: uuidv4(), success: { id: 'GIS-X', updateDate: '2025-11-06T10:00:00+03:00' } }, // not ours: ignored
    ] });
    const answer = { kind: 'GetResponseResponse', empty: false, messageId: uuidv4(), originalMessageId: s.messageId, content };
    await apply(answer);
    const rows = await store.query<{ source_key: string; status: string; gis_id: string | null; error_code: string | null; error_text: string | null; detail: unknown }>(
      `SELECT p.source_key, p.status, p.gis_id, p.error_code, p.error_text, e.detail FROM payments p JOIN payment_events e ON e.payment_id = p.id
       WHERE p.packet_id = $1 ORDER BY p.id`, [s.packetId]);
    t.deepEqual(rows, [
      { source_key: 'ok', status: 'ACCEPTED', gis_id: 'GIS-1', error_code: null, error_text: null, detail: { gisId: 'GIS-1' } },
      { source_key: 'bad', status: 'REJECTED', gis_id: null, error_code: 'INT002000,FMT001301', error_text: 'нет; формат',
        detail: { errorCode: 'INT002000,FMT001301', errorText: 'нет; формат' } },
      { source_key: 'missing', status: 'REJECTED', gis_id: null, error_code: 'MISSING_RESULT', error_text: 'ГИС returned no result for this transport-id',
        detail: { errorCode: 'MISSING_RESULT', errorText: 'ГИС returned no result for this transport-id' } },
    ]);
    const [pk] = await store.query<{ status: string; accepted: number; rejected: number }>('SELECT status, accepted, rejected FROM packets WHERE id = $1', [s.packetId]);
    t.deepEqual(pk, { status: 'RESPONDED', accepted: 1, rejected: 2 });
    // the same answer again (a lost Ack) changes nothing
    await apply(answer);
    const [ev] = await store.query<{ n: number }>('SELECT count(*)::int AS n FROM payment_events');
    t.is(ev.n, 3);
  } finally {
    await store.close();
    await dropDatabase(url);
  }
});
