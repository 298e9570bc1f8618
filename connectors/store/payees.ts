import { createHash } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { PayeeRecord } from '../../transformers/payment.ts';
import type { Store } from './db.ts';

export interface PayeeVersion {
  id: number;
  source: string;
  records: number;
  loadedAt: string;
  previousId?: number | null;
  added?: number;
  changed?: number;
  removed?: number;
  /** true when the content equals the current version: nothing was stored */
  unchanged?: boolean;
}

export const PAYEE_VERSION_LOCK = 4711002;

type VersionRow = { id: number; source: string; records: number; loaded_at: Date; previous_id: number | null; added: number; changed: number; removed: number };
const toVersion = (v: VersionRow): PayeeVersion => ({
  id: v.id, source: v.source, records: v.records, loadedAt: v.loaded_at.toISOString(), previousId: v.previous_id, added: v.added, changed: v.changed, removed: v.removed,
});

/**
 * Stores a registry as a new version and makes it current atomically, unless the current version
 * already has the same source and content (then nothing changes). The diff against the replaced version
 * (added, changed, removed by BIC + account) is recorded with it; the replaced version stays readable.
 */
export async function storePayeeVersion(store: Store, source: string, records: PayeeRecord[], rejected: number, refreshId?: number,
  opts: { sinceLastOfSource?: boolean } = {}): Promise<PayeeVersion> {
  return store.transaction((tx) => storePayeeVersionTx(store, tx, source, records, rejected, refreshId, opts));
}

/**
 * `sinceLastOfSource`: nothing is stored when the content equals the last version loaded from the same source
 * (the CSV at start: an unchanged file must not replace a registry downloaded from ГИС since).
 */
export async function storePayeeVersionTx(store: Store, tx: Transaction, source: string, records: PayeeRecord[], rejected: number, refreshId?: number,
  opts: { sinceLastOfSource?: boolean } = {}): Promise<PayeeVersion> {
  const digest = createHash('sha256').update(JSON.stringify(records)).digest('hex');
  const src = `${source}#sha256:${digest}`;
  await store.query('SELECT pg_advisory_xact_lock($1)', [PAYEE_VERSION_LOCK], tx);
  const [cur] = await store.query<VersionRow>(
    'SELECT id, source, records, loaded_at, previous_id, added, changed, removed FROM payee_versions WHERE is_current', [], tx);
  if (cur && cur.source === src) return { ...toVersion(cur), unchanged: true };
  if (opts.sinceLastOfSource) {
    const [last] = await store.query<VersionRow>(
      `SELECT id, source, records, loaded_at, previous_id, added, changed, removed FROM payee_versions
       WHERE left(source, length($1) + 1) = $1 || '#' ORDER BY id DESC LIMIT 1`, [source], tx);
    if (last && last.source === src && cur) return { ...toVersion(cur), unchanged: true };
  }
  await store.query('UPDATE payee_versions SET is_current = false WHERE is_current', [], tx);
  const [v] = await store.query<{ id: number; loaded_at: Date }>(
    'INSERT INTO payee_versions (source, records, rejected, is_current, previous_id, refresh_id) VALUES ($1, $2, $3, true, $4, $5) RETURNING id, loaded_at',
    [src, records.length, rejected, cur?.id ?? null, refreshId ?? null], tx);
  if (records.length) {
    await store.query(
      `INSERT INTO payees (version_id, bic, account, ogrn, inn, kpp, name, corr_account, bank_name, capital_repair, guid, updated_at, kbk, oktmo)
       SELECT $1, x.bic, x.account, x.ogrn, x.inn, x.kpp, x.name, x."corrAccount", x."bankName", x."capitalRepair", x.guid, x."updatedAt", x.kbk, x.oktmo
       FROM json_to_recordset($2::json) AS x(bic text, account text, ogrn text, inn text, kpp text, name text, "corrAccount" text,
            "bankName" text, "capitalRepair" boolean, guid text, "updatedAt" text, kbk text, oktmo text)
       ON CONFLICT DO NOTHING`,
      [v.id, JSON.stringify(records)], tx);
  }
  let counts = { added: 0, changed: 0, removed: 0 };
  if (cur) {
    const cols = 'ogrn, inn, kpp, name, corr_account, bank_name, capital_repair, guid, updated_at, kbk, oktmo';
    [counts] = await store.query<typeof counts>(
      `WITH n AS (SELECT * FROM payees WHERE version_id = $1), o AS (SELECT * FROM payees WHERE version_id = $2),
       d AS (
         SELECT 'added' AS change, n.bic, n.account, n.guid FROM n LEFT JOIN o USING (bic, account) WHERE o.bic IS NULL
         UNION ALL
         SELECT 'removed', o.bic, o.account, o.guid FROM o LEFT JOIN n USING (bic, account) WHERE n.bic IS NULL
         UNION ALL
         SELECT 'changed', n.bic, n.account, n.guid FROM n JOIN o USING (bic, account)
         WHERE (${cols.split(', ').map((c) => `n.${c}`).join(', ')}) IS DISTINCT FROM (${cols.split(', ').map((c) => `o.${c}`).join(', ')})),
       i AS (INSERT INTO payee_version_changes (version_id, change, bic, account, guid) SELECT $1, change, bic, account, guid FROM d RETURNING change)
       SELECT count(*) FILTER (WHERE change = 'added')::int AS added, count(*) FILTER (WHERE change = 'changed')::int AS changed,
              count(*) FILTER (WHERE change = 'removed')::int AS removed FROM i`,
      [v.id, cur.id], tx);
  } else {
    counts = { added: records.length, changed: 0, removed: 0 };
  }
  await store.query('UPDATE payee_versions SET added = $2, changed = $3, removed = $4 WHERE id = $1', [v.id, counts.added, counts.changed, counts.removed], tx);
  return { id: v.id, source: src, records: records.length, loadedAt: v.loaded_at.toISOString(), previousId: cur?.id ?? null, ...counts };
}

const RECORD_SQL = `bic, account, ogrn, inn, kpp, name, corr_account AS "corrAccount", bank_name AS "bankName", capital_repair AS "capitalRepair",
  guid, updated_at AS "updatedAt", kbk, oktmo`;

function cleanRecord(r: PayeeRecord & { kbk?: string | null; oktmo?: string | null }): PayeeRecord {
  const { kbk, oktmo, ...rest } = r;
  return { ...rest, ...(kbk ? { kbk } : {}), ...(oktmo ? { oktmo } : {}) };
}

export async function loadCurrentPayees(store: Store): Promise<{ version?: PayeeVersion; records: PayeeRecord[] }> {
  const [v] = await store.query<VersionRow>('SELECT id, source, records, loaded_at, previous_id, added, changed, removed FROM payee_versions WHERE is_current');
  if (!v) return { records: [] };
  const rows = await store.query<PayeeRecord>(`SELECT ${RECORD_SQL} FROM payees WHERE version_id = $1`, [v.id]);
  return { version: toVersion(v), records: rows.map(cleanRecord) };
}

export async function listPayeeVersions(store: Store, limit = 50): Promise<PayeeVersion[]> {
  const rows = await store.query<VersionRow & { is_current: boolean; rejected: number; refresh_id: number | null }>(
    'SELECT id, source, records, rejected, loaded_at, previous_id, added, changed, removed, is_current, refresh_id FROM payee_versions ORDER BY id DESC LIMIT $1', [limit]);
  return rows.map((r) => ({ ...toVersion(r), rejected: r.rejected, current: r.is_current, refreshId: r.refresh_id }) as PayeeVersion);
}

export interface PayeeQuery {
  versionId?: number;
  inn?: string;
  bic?: string;
  account?: string;
  capitalRepair?: boolean;
  /** ISO 8601: requisites changed at or after */
  updatedSince?: string;
  limit: number;
  offset: number;
}

/** Registry records of a version (the current one by default), filtered and paged in (BIC, account) order. */
export async function queryPayees(store: Store, q: PayeeQuery): Promise<{ version?: PayeeVersion; total: number; items: PayeeRecord[] }> {
  const [v] = await store.query<VersionRow>(
    `SELECT id, source, records, loaded_at, previous_id, added, changed, removed FROM payee_versions WHERE ${q.versionId ? 'id = $1' : 'is_current'}`,
    q.versionId ? [q.versionId] : []);
  if (!v) return { total: 0, items: [] };
  const where = ['version_id = $1'];
  const bind: unknown[] = [v.id];
  const add = (sql: string, val: unknown) => { bind.push(val); where.push(sql.replace('?', `$${bind.length}`)); };
  if (q.inn) add('inn = ?', q.inn);
  if (q.bic) add('bic = ?', q.bic);
  if (q.account) add('account = ?', q.account);
  if (q.capitalRepair !== undefined) add('capital_repair = ?', q.capitalRepair);
  if (q.updatedSince) add('updated_at::timestamptz >= ?::timestamptz', q.updatedSince);
  const w = where.join(' AND ');
  const [{ n }] = await store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payees WHERE ${w}`, bind);
  const items = await store.query<PayeeRecord>(
    `SELECT ${RECORD_SQL} FROM payees WHERE ${w} ORDER BY bic, account LIMIT ${Math.floor(q.limit)} OFFSET ${Math.floor(q.offset)}`, bind);
  return { version: toVersion(v), total: n, items: items.map(cleanRecord) };
}

export async function payeeVersionChanges(store: Store, versionId: number, limit: number, offset: number): Promise<{ change: string; bic: string; account: string; guid: string }[]> {
  return store.query(
    `SELECT change, bic, account, guid FROM payee_version_changes WHERE version_id = $1 ORDER BY change, bic, account LIMIT $2 OFFSET $3`,
    [versionId, limit, offset]);
}
