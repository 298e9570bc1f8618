import { createHash } from 'node:crypto';
import type { PayeeRecord } from '../../transformers/payment.ts';
import type { Store } from './db.ts';

export interface PayeeVersion { id: number; source: string; records: number; loadedAt: string }

/**
 * Stores a registry as a new version and makes it current atomically, unless the current version
 * already has the same source and content (then nothing changes).
 */
export async function storePayeeVersion(store: Store, source: string, records: PayeeRecord[], rejected: number): Promise<PayeeVersion> {
  const digest = createHash('sha256').update(JSON.stringify(records)).digest('hex');
  const src = `${source}#sha256:${digest}`;
  return store.transaction(async (tx) => {
    await store.query('SELECT pg_advisory_xact_lock(4711002)', [], tx);
    const [cur] = await store.query<{ id: number; source: string; records: number; loaded_at: Date }>(
      'SELECT id, source, records, loaded_at FROM payee_versions WHERE is_current', [], tx);
    if (cur && cur.source === src) return { id: cur.id, source: cur.source, records: cur.records, loadedAt: cur.loaded_at.toISOString() };
    await store.query('UPDATE payee_versions SET is_current = false WHERE is_current', [], tx);
    const [v] = await store.query<{ id: number; loaded_at: Date }>(
      'INSERT INTO payee_versions (source, records, rejected, is_current) VALUES ($1, $2, $3, true) RETURNING id, loaded_at',
      [src, records.length, rejected], tx);
    if (records.length) {
      await store.query(
        `INSERT INTO payees (version_id, bic, account, ogrn, inn, kpp, name, corr_account, bank_name, capital_repair, guid, updated_at)
         SELECT $1, x.bic, x.account, x.ogrn, x.inn, x.kpp, x.name, x."corrAccount", x."bankName", x."capitalRepair", x.guid, x."updatedAt"
         FROM json_to_recordset($2::json) AS x(bic text, account text, ogrn text, inn text, kpp text, name text, "corrAccount" text,
              "bankName" text, "capitalRepair" boolean, guid text, "updatedAt" text)
         ON CONFLICT DO NOTHING`,
        [v.id, JSON.stringify(records)], tx);
    }
    return { id: v.id, source: src, records: records.length, loadedAt: v.loaded_at.toISOString() };
  });
}

export async function loadCurrentPayees(store: Store): Promise<{ version?: PayeeVersion; records: PayeeRecord[] }> {
  const [v] = await store.query<{ id: number; source: string; records: number; loaded_at: Date }>(
    'SELECT id, source, records, loaded_at FROM payee_versions WHERE is_current');
  if (!v) return { records: [] };
  const rows = await store.query<Record<string, string | boolean>>(
    'SELECT bic, account, ogrn, inn, kpp, name, corr_account, bank_name, capital_repair, guid, updated_at FROM payees WHERE version_id = $1', [v.id]);
  return {
    version: { id: v.id, source: v.source, records: v.records, loadedAt: v.loaded_at.toISOString() },
    records: rows.map((r) => ({
      bic: r.bic as string, account: r.account as string, ogrn: r.ogrn as string, inn: r.inn as string, kpp: r.kpp as string,
      name: r.name as string, corrAccount: r.corr_account as string, bankName: r.bank_name as string,
      capitalRepair: r.capital_repair as boolean, guid: r.guid as string, updatedAt: r.updated_at as string,
    })),
  };
}
