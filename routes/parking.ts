import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import type { RouteSpec, Topology } from '../connectors/amqp/topology.ts';
import { moveParked, queueDepths, type ParkedCopy } from '../connectors/amqp/parking.ts';
import { bodyIds } from './delivery.ts';

/** Which parked messages to replay; the given criteria must all match. */
export interface ReplayFilter {
  all?: boolean;
  /** message ids (`packet-12`) or parked_messages ids */
  ids?: string[];
  /** the park reason contains this text (case-insensitive) */
  reason?: string;
  /** parked before this time (ISO 8601) */
  parkedBefore?: string;
}

export class ReplayError extends Error {
  constructor(readonly status: 400 | 404 | 409, message: string) { super(message); }
}

export interface ReplayedMessage { messageId: string | null; packetId: number | null; paymentId: number | null; reason: string | null }
export interface ReplayResult {
  queue: string;
  parkedQueue: string;
  replayed: ReplayedMessage[];
  /** parked messages that did not match and stay parked */
  kept: number;
  /** requested ids that were not in the parked queue */
  notFound: string[];
  auditId: number;
}

interface ParkedRow {
  id: number; queue: string; parked_queue: string; route: string; message_id: string; packet_id: number | null; payment_id: number | null;
  reason: string; attempts: number; history: unknown[]; parked_at: string | Date;
}

const REPLAY_LOCK = 4_711_002;

/** Checks a replay request body; returns the filter or throws a 400 naming what is wrong. */
export function parseReplayFilter(body: unknown): ReplayFilter {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ReplayError(400, 'the body must be a JSON object: { "all": true } or { "ids": [...] } and/or { "reason": "...", "parkedBefore": "<ISO time>" }');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['all', 'ids', 'reason', 'parkedBefore'].includes(k));
  if (unknown.length) throw new ReplayError(400, `unknown field(s) ${unknown.join(', ')}: use all, ids, reason, parkedBefore`);
  const f: ReplayFilter = {};
  if (b.all !== undefined) {
    if (b.all !== true) throw new ReplayError(400, '"all" must be true when given');
    f.all = true;
  }
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || !b.ids.length || b.ids.some((x) => (typeof x !== 'string' && typeof x !== 'number') || String(x) === '')) {
      throw new ReplayError(400, '"ids" must be a non-empty list of message ids (e.g. "packet-12") or parked message numbers');
    }
    f.ids = b.ids.map(String);
  }
  if (b.reason !== undefined) {
    if (typeof b.reason !== 'string' || !b.reason.trim()) throw new ReplayError(400, '"reason" must be a non-empty text');
    f.reason = b.reason;
  }
  if (b.parkedBefore !== undefined) {
    if (typeof b.parkedBefore !== 'string' || !Number.isFinite(Date.parse(b.parkedBefore))) throw new ReplayError(400, '"parkedBefore" must be an ISO 8601 time');
    f.parkedBefore = b.parkedBefore;
  }
  if (!f.all && !f.ids && !f.reason && !f.parkedBefore) throw new ReplayError(400, 'say what to replay: { "all": true }, { "ids": [...] }, "reason" or "parkedBefore"');
  return f;
}

/**
 * Parked messages: the listing (from PostgreSQL, with the queue depths from RabbitMQ) and the replay
 * (parked queue → work queue with the attempt counter reset and the history kept; a PARKED packet goes
 * back to BUILT so that the sender sends it, with its MessageID), every replay recorded in audit_log.
 */
export class Parking {
  constructor(private d: { store: Store; topology: Topology; brokerUrl: string; log: Logger }) {}

  route(name: string): RouteSpec | undefined {
    return Object.values(this.d.topology.routes).find((r) => [r.name, r.queue, r.parkedQueue].includes(name));
  }

  async list(): Promise<{ queues: { route: string; queue: string; parkedQueue: string; depth: number | null; messages: unknown[] }[] }> {
    const routes = Object.values(this.d.topology.routes);
    let depths: Record<string, number | null> = {};
    try { depths = await queueDepths(this.d.brokerUrl, routes.map((r) => r.parkedQueue)); } catch (e) { this.d.log.warn('parked queue depths unavailable', { err: e }); }
    const rows = await this.d.store.query<ParkedRow>(`SELECT * FROM parked_messages WHERE state = 'parked' ORDER BY id`);
    const attempts = rows.length ? await this.d.store.query<{ message_id: string; at: string; queue: string; attempt: number; outcome: string; tier: string | null; reason: string; actor: string | null }>(
      `SELECT message_id, at, queue, attempt, outcome, tier, reason, actor FROM delivery_attempts WHERE message_id = ANY($1::text[]) ORDER BY id`,
      [rows.map((r) => r.message_id)]) : [];
    return {
      queues: routes.map((r) => ({
        route: r.name, queue: r.queue, parkedQueue: r.parkedQueue, depth: depths[r.parkedQueue] ?? null,
        messages: rows.filter((x) => x.parked_queue === r.parkedQueue).map((x) => ({
          id: x.id, messageId: x.message_id, route: x.route, reason: x.reason, attempts: x.attempts, parkedAt: x.parked_at,
          packetId: x.packet_id, paymentId: x.payment_id,
          history: attempts.filter((a) => a.message_id === x.message_id).map(({ message_id: _m, ...a }) => a),
        })),
      })),
    };
  }

  async replay(queue: string, filter: ReplayFilter, actor: string): Promise<ReplayResult> {
    const r = this.route(queue);
    if (!r) throw new ReplayError(404, `no parked queue "${queue}": use one of ${Object.values(this.d.topology.routes).map((x) => `${x.name} (${x.parkedQueue})`).join(', ')}`);
    const { store, log } = this.d;
    return store.transaction(async (tx) => {
      // one replay per queue at a time; the lock goes with the transaction
      const [lock] = await store.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS ok', [REPLAY_LOCK, r.parkedQueue], tx);
      if (!lock.ok) throw new ReplayError(409, `a replay of ${r.parkedQueue} is already running`);
      const rows = await store.query<ParkedRow>(`SELECT * FROM parked_messages WHERE parked_queue = $1 AND state = 'parked'`, [r.parkedQueue]);
      const byMessage = new Map(rows.map((x) => [x.message_id, x]));
      const wanted = new Set(filter.ids ?? []);
      const found = new Set<string>();
      const before = filter.parkedBefore ? Date.parse(filter.parkedBefore) : undefined;
      const replayed: ReplayedMessage[] = [];
      const now = new Date().toISOString();

      const matches = (m: ParkedCopy, row: ParkedRow | undefined): boolean => {
        if (filter.ids) {
          const keys = [m.messageId, row ? String(row.id) : undefined].filter((k): k is string => !!k);
          const hit = keys.find((k) => wanted.has(k));
          if (!hit) return false;
          found.add(hit);
        }
        const reason = row?.reason ?? String(m.headers['x-reason'] ?? '');
        if (filter.reason && !reason.toLowerCase().includes(filter.reason.toLowerCase())) return false;
        if (before !== undefined) {
          const at = row ? new Date(row.parked_at).getTime() : lastAt(m.headers);
          if (!(at < before)) return false;
        }
        return true;
      };

      let res: { kept: number } = { kept: 0 };
      let failure: Error | undefined;
      let pending: ParkedRow | undefined;
      try {
        res = await moveParked(this.d.brokerUrl, {
        from: r.parkedQueue, to: r.queue,
        decide: async (m) => {
          const row = m.messageId ? byMessage.get(m.messageId) : undefined;
          if (!matches(m, row)) return undefined;
          const { packetId } = bodyIds(m.body);
          // the sender sends BUILT packets (and PARKED ones); BUILT says it is in flight again
          if (r.name === 'packets' && packetId !== null) {
            await store.query(`UPDATE packets SET status = 'BUILT' WHERE id = $1 AND status = 'PARKED'`, [packetId]);
          }
          // recorded before the move: the replayed message may be handled (and parked again) before the ack returns
          const ids = bodyIds(m.body);
          if (row) await store.query(`UPDATE parked_messages SET state = 'replayed', replayed_at = now(), replayed_by = $2 WHERE id = $1`, [row.id, actor]);
          await store.query(
            `INSERT INTO delivery_attempts (queue, message_id, packet_id, payment_id, attempt, outcome, tier, reason, actor) VALUES ($1, $2, $3, $4, $5, 'replay', $1, $6, $7)`,
            [r.queue, m.messageId ?? null, ids.packetId, ids.paymentId, Number(m.headers['x-attempt'] ?? 1) - 1, `replayed from ${r.parkedQueue}`, actor]);
          pending = row;
          const history = Array.isArray(m.headers['x-history']) ? (m.headers['x-history'] as unknown[]) : [];
          const { 'x-parked-from': _p, 'x-reason': _r, ...rest } = m.headers;
          return {
            ...rest,
            'x-attempt': 1,
            'x-retry-since': now,
            'x-replays': Number(m.headers['x-replays'] ?? 0) + 1,
            'x-history': [...history, { at: now, attempt: Number(m.headers['x-attempt'] ?? 1) - 1, outcome: 'replay', reason: `replayed by ${actor}` }],
          };
        },
        moved: async (m) => {
          const row = m.messageId ? byMessage.get(m.messageId) : undefined;
          pending = undefined;
          replayed.push({ messageId: m.messageId ?? null, ...bodyIds(m.body), reason: row?.reason ?? (m.headers['x-reason'] as string | undefined) ?? null });
        },
        });
      } catch (e) {
        failure = e as Error;
        // the message being moved stayed parked: so does its record
        if (pending) {
          await store.query(
            `UPDATE parked_messages p SET state = 'parked', replayed_at = NULL, replayed_by = NULL WHERE id = $1
             AND NOT EXISTS (SELECT 1 FROM parked_messages q WHERE q.parked_queue = p.parked_queue AND q.message_id = p.message_id AND q.state = 'parked')`,
            [pending.id]).catch(() => {});
        }
      }
      const notFound = failure ? [] : [...wanted].filter((id) => !found.has(id));
      // recorded outside the transaction: what was moved stays recorded even when the replay broke off
      const [audit] = await store.query<{ id: number }>(
        `INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, 'parking.replay', $2, $3::jsonb) RETURNING id`,
        [actor, r.parkedQueue, JSON.stringify({ filter, replayed: replayed.map((x) => x.messageId), kept: res.kept, notFound, ...(failure ? { error: failure.message } : {}) })]);
      if (failure) throw new Error(`replay of ${r.parkedQueue} broke off after ${replayed.length} message(s): ${failure.message}`);
      log.info('parked messages replayed', { actor, queue: r.parkedQueue, replayed: replayed.length, kept: res.kept, notFound: notFound.length });
      return { queue: r.queue, parkedQueue: r.parkedQueue, replayed, kept: res.kept, notFound, auditId: audit.id };
    });
  }
}

function lastAt(headers: Record<string, unknown>): number {
  const h = headers['x-history'];
  const last = Array.isArray(h) && h.length ? Date.parse(String((h[h.length - 1] as { at?: unknown })?.at ?? '')) : NaN;
  return Number.isFinite(last) ? last : Date.now();
}

/** The audit log, newest first. */
export async function readAudit(store: Store, o: { limit?: number; action?: string } = {}): Promise<unknown[]> {
  return store.query(
    `SELECT id, at, actor, action, target, detail FROM audit_log WHERE ($2::text IS NULL OR action = $2) ORDER BY id DESC LIMIT $1`,
    [Math.min(Math.max(o.limit ?? 100, 1), 1000), o.action ?? null]);
}
