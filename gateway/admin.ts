import { Hono, type Context } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import type { Store } from '../connectors/store/db.ts';
import type { Broker } from '../connectors/amqp/broker.ts';
import type { Intake, FileOutcome } from '../routes/intake.ts';
import { createHash } from 'node:crypto';
import { parseReplayFilter, readAudit, ReplayError, type Parking } from '../routes/parking.ts';
import type { RegistryRefresher } from '../routes/registry.ts';
import { listPayeeVersions, payeeVersionChanges, queryPayees, type PayeeQuery } from '../connectors/store/payees.ts';
import { encodeText } from '../connectors/outbox.ts';
import { formatPayeesCsv } from '../transformers/classify/payees.ts';

export interface AdminDeps {
  store: Store;
  broker: Broker;
  token: string;
  intake: Intake;
  afterCommit: (o: FileOutcome) => Promise<void>;
  counters: () => Record<string, unknown>;
  maxBodyBytes: number;
  parking: Parking;
  registry?: RegistryRefresher;
}

/** Who did it: the admin token by a hash prefix (never the token), and the operator's name if sent (X-Operator). */
export function adminActor(token: string, operator?: string): string {
  const id = `token:${createHash('sha256').update(token).digest('hex').slice(0, 8)}`;
  const op = operator?.replace(/[^\p{L}\p{N}_.@ -]/gu, '').trim().slice(0, 64);
  return op ? `${id} (${op})` : id;
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/** Filters of GET /api/v1/payees(.csv); a message naming the parameter when one is bad. */
function payeeQuery(q: (k: string) => string | undefined, maxLimit: number): PayeeQuery | string {
  const out: PayeeQuery = { limit: maxLimit === Infinity ? 1e9 : 100, offset: 0 };
  const inn = q('inn'), bic = q('bic'), account = q('account'), cap = q('capitalRepair'), since = q('updatedSince'), version = q('version');
  if (inn !== undefined) { if (!/^\d{10}$|^\d{12}$/.test(inn)) return `inn "${inn}" must be 10 or 12 digits`; out.inn = inn; }
  if (bic !== undefined) { if (!/^\d{9}$/.test(bic)) return `bic "${bic}" must be 9 digits`; out.bic = bic; }
  if (account !== undefined) { if (!/^\d{5}[0-9ABCEHKMPTX]\d{14}$/.test(account)) return `account "${account}" must be a 20-character account`; out.account = account; }
  if (cap !== undefined) { if (cap !== 'true' && cap !== 'false') return `capitalRepair "${cap}" must be true or false`; out.capitalRepair = cap === 'true'; }
  if (since !== undefined) { if (!ISO_RE.test(since) || Number.isNaN(Date.parse(since))) return `updatedSince "${since}" must be an ISO 8601 date or date-time`; out.updatedSince = since; }
  if (version !== undefined) { if (!/^\d+$/.test(version)) return `version "${version}" must be a version id`; out.versionId = Number(version); }
  for (const [k, max] of [['limit', maxLimit], ['offset', Infinity]] as const) {
    const v = q(k);
    if (v === undefined) continue;
    if (!/^\d+$/.test(v) || Number(v) > max || (k === 'limit' && Number(v) < 1)) return `${k} "${v}" must be a whole number${k === 'limit' ? ` from 1 to ${max}` : ''}`;
    out[k] = Number(v);
  }
  return out;
}

/** RFC 9457 problem details. */
export function problem(c: Context, status: 400 | 401 | 404 | 409 | 413 | 415 | 422 | 500 | 503, title: string, detail?: string, extra: Record<string, unknown> = {}) {
  return c.json({ type: 'about:blank', title, status, detail, ...extra }, status, { 'content-type': 'application/problem+json' });
}

/** The admin endpoint: open /health; everything under /api behind the bearer token. */
export function adminApp(d: AdminDeps): Hono {
  const app = new Hono();
  app.get('/health', async (c) => {
    let db = true;
    try { await d.store.query('SELECT 1'); } catch { db = false; }
    const ok = db && d.broker.connected;
    return c.json({ status: ok ? 'ok' : 'degraded', database: db, broker: d.broker.connected }, ok ? 200 : 503);
  });
  app.use('/api/*', async (c, next) => {
    const h = c.req.header('authorization') ?? '';
    if (h !== `Bearer ${d.token}`) return problem(c, 401, 'Unauthorized', 'send "Authorization: Bearer <admin.token>"');
    await next();
  });
  app.get('/api/routes', (c) => {
    const t = d.broker.topology;
    return c.json({
      routes: [
        { name: 'files', from: 'inbox (file) | POST /api/v1/files', steps: ['claim', 'sha256', 'parse UFEBS/CSV', 'classify'], to: `${t.workExchange} payment.reportable` },
        ...Object.values(t.routes).map((r) => ({
          name: r.name, from: `${t.workExchange} ${r.bindingKey}`, queue: r.queue, retry: r.retryQueues, parked: r.parkedQueue,
          steps: r.name === 'payments' ? ['batch ≤ maxItems', 'packet row + MessageID'] : ['ГИС XML', 'XSD check', 'sign', 'SendRequest'],
          to: r.name === 'payments' ? `${t.workExchange} packet.ready` : 'SMEV 3 → GetResponse poller → ACCEPTED | REJECTED',
        })),
      ],
      topology: { exchanges: t.exchanges, queues: t.queues.map((q) => ({ name: q.name, role: q.role, arguments: q.arguments })), bindings: t.bindings },
    });
  });
  app.get('/api/stats', async (c) => {
    const q = (sql: string) => d.store.query<{ status: string; n: number }>(sql);
    const toObj = (rows: { status: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.status, r.n]));
    const [payments, files, packets] = await Promise.all([
      q('SELECT status, count(*)::int AS n FROM payments GROUP BY status'),
      q('SELECT status, count(*)::int AS n FROM files GROUP BY status'),
      q('SELECT status, count(*)::int AS n FROM packets GROUP BY status'),
    ]);
    const [registry] = await d.store.query<Record<string, unknown>>(
      `SELECT (SELECT id FROM payee_versions WHERE is_current) AS "currentVersion", (SELECT records FROM payee_versions WHERE is_current) AS records,
              (SELECT row_to_json(r) FROM (SELECT id, trigger, status, error, started_at AS "startedAt", finished_at AS "finishedAt"
                 FROM payee_refreshes ORDER BY id DESC LIMIT 1) r) AS "lastRefresh"`);
    const [smev] = await d.store.query<Record<string, number>>(
      `SELECT count(*) FILTER (WHERE status = 'rejected')::int AS "untrustedReplies", count(*)::int AS messages FROM smev_messages`);
    let queues: Record<string, unknown> = {};
    try { queues = await d.broker.queueDepths(); } catch (e) { queues = { error: (e as Error).message }; }
    return c.json({
      payments: toObj(payments), files: toObj(files), packets: toObj(packets),
      packetsInFlight: (toObj(packets).SENT ?? 0) + (toObj(packets).BUILT ?? 0),
      smev, queues, broker: { connected: d.broker.connected, reconnects: d.broker.reconnects }, counters: d.counters(), payeeRegistry: registry,
    });
  });
  app.get('/api/files', async (c) => {
    const limit = Math.min(Number(c.req.query('limit') ?? 100) || 100, 1000);
    return c.json(await d.store.query(
      `SELECT id, name, status, format, encoding, reason, payments_added AS payments, reportable, skipped, records_rejected AS "recordsRejected",
              received_at AS "receivedAt", finished_at AS "finishedAt" FROM files ORDER BY id DESC LIMIT $1`, [limit]));
  });
  app.get('/api/payments/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return problem(c, 400, 'Bad payment id', `"${c.req.param('id')}" is not a number`);
    const [p] = await d.store.query('SELECT * FROM payments WHERE id = $1', [id]);
    if (!p) return problem(c, 404, 'Not found', `payment ${id} does not exist`);
    const history = await d.store.query('SELECT at, status, detail FROM payment_events WHERE payment_id = $1 ORDER BY id', [id]);
    return c.json({ ...p, history });
  });
  app.get('/api/packets/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return problem(c, 400, 'Bad packet id', `"${c.req.param('id')}" is not a number`);
    const [p] = await d.store.query('SELECT * FROM packets WHERE id = $1', [id]);
    if (!p) return problem(c, 404, 'Not found', `packet ${id} does not exist`);
    const messages = await d.store.query(
      'SELECT id, at, direction, operation, message_id, http_status, status, error, duration_ms FROM smev_messages WHERE packet_id = $1 ORDER BY id', [id]);
    return c.json({ ...p, messages });
  });
  app.get('/api/smev-messages/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return problem(c, 400, 'Bad message id', `"${c.req.param('id')}" is not a number`);
    const [m] = await d.store.query('SELECT * FROM smev_messages WHERE id = $1', [id]);
    return m ? c.json(m) : problem(c, 404, 'Not found', `SMEV message ${id} does not exist`);
  });
  app.get('/api/parking', async (c) => c.json(await d.parking.list()));
  app.post('/api/parking/:queue/replay', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return problem(c, 400, 'Bad replay request', 'the body must be JSON: { "all": true } or { "ids": [...] } and/or "reason", "parkedBefore"');
    }
    try {
      const filter = parseReplayFilter(body);
      return c.json(await d.parking.replay(c.req.param('queue'), filter, adminActor(d.token, c.req.header('x-operator'))));
    } catch (e) {
      if (e instanceof ReplayError) return problem(c, e.status, e.status === 404 ? 'Unknown parked queue' : e.status === 409 ? 'Replay already running' : 'Bad replay request', e.message);
      throw e;
    }
  });
  app.get('/api/audit', async (c) => {
    const limit = Number(c.req.query('limit') ?? 100);
    if (!Number.isSafeInteger(limit) || limit < 1) return problem(c, 400, 'Bad limit', `"${c.req.query('limit')}" is not a positive whole number`);
    return c.json(await readAudit(d.store, { limit, action: c.req.query('action') || undefined }));
  });
  // HTTP connector: a bank system posts a UFEBS/CSV file; same intake as the inbox
  app.post('/api/v1/files', async (c) => {
    const name = c.req.query('name');
    if (!name || !/^[^/\\\0]{1,200}$/.test(name)) return problem(c, 400, 'Missing file name', 'pass ?name=<file name> (no slashes, ≤200 characters)');
    const len = Number(c.req.header('content-length') ?? 0);
    if (len > d.maxBodyBytes) return problem(c, 413, 'File too large', `${len} bytes exceeds ${d.maxBodyBytes}`);
    const body = Buffer.from(await c.req.arrayBuffer());
    if (body.length > d.maxBodyBytes) return problem(c, 413, 'File too large', `${body.length} bytes exceeds ${d.maxBodyBytes}`);
    const o = await d.intake.processBytes(body, name, 'http');
    await d.afterCommit(o);
    const res = { fileId: o.fileId, name: o.name, status: o.status, reason: o.reason, payments: o.payments, reportable: o.reportable,
      skipped: o.skipped, recordsRejected: o.recordsRejected, problems: o.problems };
    if (o.status === 'REJECTED') return problem(c, 422, 'File rejected', o.reason, res);
    return c.json(res, o.status === 'DUPLICATE' ? 200 : 201);
  });
  // payee registry (ГИС ВС 95796): refresh on demand, versions with their diff, export for the bank's systems
  app.post('/api/v1/payees/refresh', async (c) => {
    if (!d.registry) return problem(c, 503, 'Registry refresh not available', 'this instance has no SMEV client');
    const r = await d.registry.refresh('manual');
    if (r.status === 'busy') return problem(c, 409, 'Refresh already running', `refresh ${r.refreshId} is still running`, { refreshId: r.refreshId });
    if (r.status === 'skipped') return problem(c, 409, 'Refresh skipped', r.reason);
    const [row] = await d.store.query('SELECT id, trigger, status, error, started_at AS "startedAt" FROM payee_refreshes WHERE id = $1', [r.refreshId]);
    return c.json(row, 202, { location: `/api/v1/payees/refreshes/${r.refreshId}` });
  });
  const refreshSql = `SELECT id, trigger, slot, status, export_id AS "exportId", pages, records, rejected, version_id AS "versionId", error,
    started_at AS "startedAt", finished_at AS "finishedAt" FROM payee_refreshes`;
  app.get('/api/v1/payees/refreshes', async (c) => c.json(await d.store.query(`${refreshSql} ORDER BY id DESC LIMIT 100`)));
  app.get('/api/v1/payees/refreshes/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return problem(c, 400, 'Bad refresh id', `"${c.req.param('id')}" is not a number`);
    const [r] = await d.store.query(`${refreshSql} WHERE id = $1`, [id]);
    if (!r) return problem(c, 404, 'Not found', `refresh ${id} does not exist`);
    const pages = await d.store.query(
      `SELECT page_no AS page, message_id AS "messageId", status, error, jsonb_array_length(coalesce(rejected, '[]')) AS rejected, sent_at AS "sentAt", received_at AS "receivedAt"
       FROM payee_refresh_pages WHERE refresh_id = $1 ORDER BY page_no`, [id]);
    return c.json({ ...r, pageRequests: pages });
  });
  app.get('/api/v1/payees/versions', async (c) => c.json(await listPayeeVersions(d.store)));
  app.get('/api/v1/payees/versions/:id/changes', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id)) return problem(c, 400, 'Bad version id', `"${c.req.param('id')}" is not a number`);
    const limit = Math.min(Number(c.req.query('limit') ?? 1000) || 1000, 10_000);
    const offset = Number(c.req.query('offset') ?? 0) || 0;
    return c.json(await payeeVersionChanges(d.store, id, limit, offset));
  });
  app.get('/api/v1/payees.csv', async (c) => {
    const enc = (c.req.query('encoding') ?? 'utf-8').toLowerCase();
    if (enc !== 'utf-8' && enc !== 'windows-1251') return problem(c, 400, 'Bad encoding', `encoding "${enc}" must be utf-8 or windows-1251`);
    const q = payeeQuery((k) => c.req.query(k), Infinity);
    if (typeof q === 'string') return problem(c, 400, 'Bad filter', q);
    const r = await queryPayees(d.store, q);
    if (!r.version) return problem(c, 404, 'No registry', q.versionId ? `registry version ${q.versionId} does not exist` : 'no payee registry version is loaded yet');
    const body = encodeText(formatPayeesCsv(r.items), enc);
    return c.body(new Uint8Array(body), 200, {
      'content-type': `text/csv; charset=${enc}`, 'content-disposition': `attachment; filename="payees_v${r.version.id}.csv"`, 'x-registry-version': String(r.version.id),
    });
  });
  app.get('/api/v1/payees', async (c) => {
    const q = payeeQuery((k) => c.req.query(k), 1000);
    if (typeof q === 'string') return problem(c, 400, 'Bad filter', q);
    const r = await queryPayees(d.store, q);
    if (!r.version) return problem(c, 404, 'No registry', q.versionId ? `registry version ${q.versionId} does not exist` : 'no payee registry version is loaded yet');
    return c.json({ version: r.version, total: r.total, limit: q.limit, offset: q.offset, items: r.items });
  });
  app.notFound((c) => problem(c, 404, 'Not found', `${c.req.method} ${c.req.path}`));
  app.onError((e, c) => problem(c, 500, 'Internal error', e.message));
  return app;
}

export function listen(app: Hono, host: string, port: number): Promise<{ server: ServerType; port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }, (info) => {
      resolve({ server, port: info.port, close: () => new Promise((r) => server.close(() => r())) });
    });
    server.on('error', reject);
  });
}
