/**
 * Payee registry refresh through SMEV (ВС 95796): one refresh = one export of ГИС, fetched page by page
 * (each page is its own SendRequest; its answer comes through the poller). Only when every page has arrived,
 * matches the export's totals and was validated is a new registry version built, in one transaction with the
 * last page; a failed or partial download never replaces the current version (the attempt is recorded).
 * One refresh at a time across all bus instances (PostgreSQL advisory lock + the running row).
 */
import type { Transaction } from 'sequelize';
import { v1 as uuidv1 } from 'uuid';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import type { SmevClient } from '../connectors/smev3/client.ts';
import { storePayeeVersionTx, type PayeeVersion } from '../connectors/store/payees.ts';
import type { ValidationResult } from '../connectors/xsd/validator.ts';
import { buildRegistryRequest, flattenRegistry, parseRegistryResponse, GIS_PAYEE_REGISTRY_1_0_0 } from '../transformers/gis/registry.ts';
import type { PayeeRecord, RecordProblem } from '../transformers/payment.ts';
import { cronMatches, type Cron } from '../transformers/cron.ts';

export const REGISTRY_LOCK = 4711005;
export const REGISTRY_SOURCE = 'smev:ВС95796';

export interface RegistryDeps {
  store: Store;
  log: Logger;
  client: SmevClient;
  informationSystemId: string;
  organizationId: string;
  pageSize: number;
  /** a refresh still running after this long is marked failed (and another may start) */
  timeoutMs: number;
  validate: (xml: string) => Promise<ValidationResult>;
  /** after a new version was committed */
  onVersion: (v: PayeeVersion) => Promise<void>;
  wakePoller: () => void;
}

export type RefreshStart =
  | { status: 'started'; refreshId: number }
  | { status: 'busy'; refreshId: number }
  | { status: 'skipped'; reason: string };

type Received = { messageId: string; originalMessageId?: string; content?: string; asyncStatus?: { category: string; details?: string; fault?: { code?: string; description?: string } } };

export class RegistryRefresher {
  started = 0;
  private timer?: NodeJS.Timeout;
  private lastSlot = 0;

  constructor(private d: RegistryDeps) {}

  /** Starts a refresh (the first page request) unless one is running; `slot` makes a scheduled one unique per cron minute. */
  async refresh(trigger: 'manual' | 'schedule', slot?: Date): Promise<RefreshStart> {
    const { store } = this.d;
    const r = await store.transaction(async (tx): Promise<RefreshStart> => {
      await store.query('SELECT pg_advisory_xact_lock($1)', [REGISTRY_LOCK], tx);
      await store.query(
        `WITH f AS (UPDATE payee_refreshes SET status = 'failed', finished_at = now(), error = 'timed out after ' || $1::text || ' ms: no new version'
           WHERE status = 'running' AND started_at < now() - ($1::text || ' milliseconds')::interval RETURNING id)
         UPDATE payee_refresh_pages SET status = 'failed', error = 'refresh timed out' WHERE refresh_id IN (SELECT id FROM f) AND status IN ('sending', 'sent')`,
        [String(this.d.timeoutMs)], tx);
      const [running] = await store.query<{ id: number }>(`SELECT id FROM payee_refreshes WHERE status = 'running'`, [], tx);
      if (running) return { status: 'busy', refreshId: running.id };
      if (slot) {
        const [done] = await store.query<{ id: number }>('SELECT id FROM payee_refreshes WHERE slot = $1', [slot], tx);
        if (done) return { status: 'skipped', reason: `the refresh of ${slot.toISOString()} was started already (refresh ${done.id})` };
      }
      const [row] = await store.query<{ id: number }>(
        `INSERT INTO payee_refreshes (trigger, slot, status) VALUES ($1, $2, 'running') RETURNING id`, [trigger, slot ?? null], tx);
      return { status: 'started', refreshId: row.id };
    });
    if (r.status === 'started') {
      this.started++;
      this.d.log.info('payee registry refresh started', { refreshId: r.refreshId, trigger });
      await this.sendPage(r.refreshId, 1, undefined);
    }
    return r;
  }

  /** Sends one page request; a transient failure is retried with the same MessageID, then the refresh fails. */
  async sendPage(refreshId: number, pageNo: number, pageKey: string | undefined): Promise<void> {
    const { store, client, log } = this.d;
    const messageId = uuidv1();
    const xml = buildRegistryRequest({ informationSystemId: this.d.informationSystemId, organizationId: this.d.organizationId, pageSize: this.d.pageSize, pageKey });
    const v = await this.d.validate(xml);
    if (!v.valid) return this.fail(refreshId, `page ${pageNo} request does not match ${GIS_PAYEE_REGISTRY_1_0_0.id}: ${v.errors.map((e) => e.message).join('; ')}`);
    await store.query(`INSERT INTO payee_refresh_pages (refresh_id, page_no, message_id, page_key, status) VALUES ($1, $2, $3, $4, 'sending')`,
      [refreshId, pageNo, messageId, pageKey ?? null]);
    let error = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await client.sendRequest(messageId, xml);
      const ok = res.kind === 'ok' || (res.kind === 'fault' && res.fault.name === 'MessageIsAlreadySent');
      if (ok) {
        await store.query(`UPDATE payee_refresh_pages SET status = 'sent' WHERE message_id = $1 AND status = 'sending'`, [messageId]);
        log.info('payee registry page requested', { refreshId, page: pageNo, messageId });
        this.d.wakePoller();
        return;
      }
      error = res.kind === 'fault' ? `${res.fault.name}: ${res.fault.description ?? ''}` : res.kind === 'transport' ? res.error : res.reason;
      const transient = res.kind === 'transport' || (res.kind === 'fault' && ['SMEVFailure', 'DestinationOverflow'].includes(res.fault.name)) || res.kind === 'untrusted';
      if (!transient) break;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
    await store.query(`UPDATE payee_refresh_pages SET status = 'failed', error = $2 WHERE message_id = $1`, [messageId, error]);
    await this.fail(refreshId, `page ${pageNo} could not be sent: ${error}`);
  }

  private async fail(refreshId: number, error: string, tx?: Transaction): Promise<void> {
    await this.d.store.query(`UPDATE payee_refreshes SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1 AND status = 'running'`, [refreshId, error], tx);
    // a page still waiting for its answer is not waited for any more (its late answer is acknowledged and ignored)
    await this.d.store.query(`UPDATE payee_refresh_pages SET status = 'failed', error = coalesce(error, 'refresh failed') WHERE refresh_id = $1 AND status IN ('sending', 'sent')`, [refreshId], tx);
    this.d.log.error('payee registry refresh failed: the current version stays', { refreshId, error });
  }

  /**
   * Called by the poller inside its transaction for every response; handles it when it answers a page request.
   * Returns the smev_inbound outcome and what to do after the commit (next page, new version), or undefined.
   */
  async onResponse(r: Received, tx: Transaction): Promise<{ outcome: string; after?: () => Promise<void> } | undefined> {
    const { store, log } = this.d;
    if (!r.originalMessageId) return undefined;
    const [pg] = await store.query<{ refresh_id: number; page_no: number; status: string; refresh_status: string; export_id: string | null }>(
      `SELECT p.refresh_id, p.page_no, p.status, f.status AS refresh_status, f.export_id FROM payee_refresh_pages p
       JOIN payee_refreshes f ON f.id = p.refresh_id WHERE p.message_id = $1 FOR UPDATE OF f`, [r.originalMessageId], tx);
    if (!pg) return undefined;
    const where = `refresh ${pg.refresh_id} page ${pg.page_no}`;
    if (pg.refresh_status !== 'running') return { outcome: `${where}: late answer, refresh is ${pg.refresh_status}` };
    if (r.asyncStatus) {
      const s = r.asyncStatus;
      if (s.category === 'requestIsRejectedBySmev' || s.category === 'responseIsRejectedBySmev') {
        const e = `SMEV rejected the ${where} request: ${s.fault?.code ?? s.category} ${s.fault?.description ?? s.details ?? ''}`.trim();
        await store.query(`UPDATE payee_refresh_pages SET status = 'failed', error = $2, received_at = now() WHERE message_id = $1`, [r.originalMessageId, e], tx);
        await this.fail(pg.refresh_id, e, tx);
        return { outcome: e };
      }
      return { outcome: `${where}: status ${s.category}` };
    }
    const failPage = async (e: string) => {
      await store.query(`UPDATE payee_refresh_pages SET status = 'failed', error = $2, received_at = now() WHERE message_id = $1`, [r.originalMessageId, e], tx);
      await this.fail(pg.refresh_id, `${where}: ${e}`, tx);
      return { outcome: `${where} failed: ${e}` };
    };
    if (!r.content) return failPage('answer without content');
    const v = await this.d.validate(r.content);
    if (!v.valid) return failPage(`answer does not match ${GIS_PAYEE_REGISTRY_1_0_0.id}: ${v.errors.slice(0, 3).map((e) => (e.line ? `line ${e.line}: ` : '') + e.message).join('; ')}`);
    const res = parseRegistryResponse(r.content);
    if ('error' in res) return failPage(`ГИС answered ${res.error.code}: ${res.error.description}`);
    const page = res.page;
    if (page.pageNumber !== pg.page_no) return failPage(`ГИС sent page ${page.pageNumber}, expected ${pg.page_no}`);
    if (pg.export_id && page.exportId !== pg.export_id) return failPage(`page of export ${page.exportId}, expected export ${pg.export_id}`);
    const { records, rejected } = flattenRegistry(page.organizations, `page ${page.pageNumber}`);
    for (const x of rejected) log.warn('payee registry record rejected', { refreshId: pg.refresh_id, ...x });
    await store.query(
      `UPDATE payee_refresh_pages SET status = 'received', records = $2::jsonb, rejected = $3::jsonb, received_at = now() WHERE message_id = $1`,
      [r.originalMessageId, JSON.stringify(records), JSON.stringify(rejected)], tx);
    await store.query(
      `UPDATE payee_refreshes SET export_id = $2, pages = pages + 1, records = records + $3, rejected = rejected + $4 WHERE id = $1`,
      [pg.refresh_id, page.exportId, records.length, rejected.length], tx);
    if (page.nextPageKey) {
      const next = page.nextPageKey;
      return { outcome: `${where} stored`, after: () => this.sendPage(pg.refresh_id, pg.page_no + 1, next) };
    }
    // the last page: everything or nothing
    const pages = await store.query<{ records: PayeeRecord[]; rejected: RecordProblem[] }>(
      `SELECT records, rejected FROM payee_refresh_pages WHERE refresh_id = $1 AND status = 'received' ORDER BY page_no`, [pg.refresh_id], tx);
    const all = pages.flatMap((p) => p.records);
    const bad = pages.reduce((n, p) => n + p.rejected.length, 0);
    if (pages.length !== pg.page_no) return failPage(`only ${pages.length} of ${pg.page_no} pages arrived`);
    if (all.length + bad !== page.totalRequisites) return failPage(`export ${page.exportId} announced ${page.totalRequisites} requisites, ${all.length + bad} arrived`);
    const version = await storePayeeVersionTx(store, tx, REGISTRY_SOURCE, all, bad, pg.refresh_id);
    await store.query(`UPDATE payee_refreshes SET status = $2, version_id = $3, finished_at = now() WHERE id = $1`,
      [pg.refresh_id, version.unchanged ? 'unchanged' : 'done', version.id], tx);
    // page contents are not needed any more (the version holds them)
    await store.query(`UPDATE payee_refresh_pages SET records = NULL WHERE refresh_id = $1`, [pg.refresh_id], tx);
    log.info(version.unchanged ? 'payee registry unchanged' : 'payee registry version stored', {
      refreshId: pg.refresh_id, versionId: version.id, records: all.length, rejected: bad, added: version.added, changed: version.changed, removed: version.removed });
    return { outcome: `${where}: registry version ${version.id}${version.unchanged ? ' (unchanged)' : ''}`, after: version.unchanged ? undefined : () => this.d.onVersion(version) };
  }

  /** Requests in flight (the poller keeps polling while there are). */
  async inFlight(): Promise<number> {
    const [r] = await this.d.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM payee_refresh_pages WHERE status = 'sent'`);
    return r.n;
  }

  /** Checks the cron expression every 20 s; each matching minute starts one refresh across all instances. */
  schedule(cron: Cron, utc = false): void {
    const tick = () => {
      const now = new Date();
      const slot = new Date(Math.floor(now.getTime() / 60_000) * 60_000);
      if (slot.getTime() === this.lastSlot || !cronMatches(cron, slot, utc)) return;
      this.lastSlot = slot.getTime();
      this.refresh('schedule', slot).then(
        (r) => this.d.log.info('scheduled payee registry refresh', { cron: cron.source, ...r }),
        (e) => this.d.log.error('scheduled payee registry refresh failed to start', { err: e }));
    };
    this.timer = setInterval(tick, 20_000);
    this.timer.unref();
    tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
