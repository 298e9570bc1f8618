import type { Transaction } from 'sequelize';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import type { SmevClient } from '../connectors/smev3/client.ts';
import { v1 as uuidv1 } from 'uuid';
import { parseImportResult } from '../transformers/gis/result.ts';
import type { parseSmevResponse } from '../transformers/smev/envelope.ts';

export interface PollerDeps {
  store: Store;
  log: Logger;
  client: SmevClient;
  minMs: number;
  maxMs: number;
  /** GetResponse loops running at once (default 1); a response is handled by the loop that took it */
  loops?: number;
  publishPacket: (packetId: number, messageId: string) => Promise<void>;
  /** announces payment.reportable for these ids (in chunks) */
  publishPayments: (paymentIds: number[]) => Promise<void>;
  /** answers to payee registry page requests (matched by OriginalMessageId) go here, not to the packets */
  registry?: {
    onResponse(r: ReceivedResponse, tx: Transaction): Promise<{ outcome: string; after?: () => Promise<void> } | undefined>;
    inFlight(): Promise<number>;
  };
}

/**
 * ГИС error codes that mean "transfer failed, send again": the packet is rebuilt (new MessageID, new signature,
 * same order-id and transport-id), never resent as it was (gis-zhkh.md §9).
 */
export const REBUILD_CODES = new Set(['EXP001000']);

/**
 * GetResponse loops for the information system (`loops`, default 1): each drains while messages arrive, backs off
 * on an empty queue, idles while nothing is in flight. Each response is stored and applied in one transaction and
 * only then acknowledged to SMEV (at-least-once from SMEV, exactly-once effect here: smev_inbound by MessageID,
 * results by transport-id, so two loops never apply one answer twice).
 */
export class Poller {
  private running = false;
  private loops: Promise<void>[] = [];
  private wakeUps = new Set<() => void>();
  received = 0;
  lastError?: string;

  constructor(private d: PollerDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: Math.max(1, this.d.loops ?? 1) }, () => this.run());
  }

  wake(): void {
    for (const w of [...this.wakeUps]) w();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await Promise.all(this.loops);
  }

  private async idle(ms: number): Promise<void> {
    let wake!: () => void;
    await new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => { clearTimeout(t); r(); };
      this.wakeUps.add(wake);
    });
    this.wakeUps.delete(wake);
  }

  private async inFlight(): Promise<number> {
    const [r] = await this.d.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM packets WHERE status = 'SENT'`);
    return r.n + (this.d.registry ? await this.d.registry.inFlight() : 0);
  }

  private async run(): Promise<void> {
    let delay = this.d.minMs;
    while (this.running) {
      try {
        if ((await this.inFlight()) === 0) {
          await this.idle(this.d.maxMs);
          delay = this.d.minMs;
          continue;
        }
        const got = await this.pollOnce();
        if (got) {
          delay = this.d.minMs;
          continue;
        }
      } catch (e) {
        this.lastError = (e as Error).message;
        this.d.log.warn('poll failed', { err: e });
      }
      await this.idle(delay);
      delay = Math.min(delay * 2, this.d.maxMs);
    }
  }

  /** One GetResponse; true when a message was received (and handled). */
  async pollOnce(): Promise<boolean> {
    const { client, log } = this.d;
    const res = await client.getResponse();
    if (res.kind === 'fault') {
      this.lastError = `${res.fault.name}: ${res.fault.description ?? ''}`;
      log.warn('GetResponse fault', { fault: res.fault.name, description: res.fault.description });
      return false;
    }
    if (res.kind === 'transport') {
      this.lastError = res.error;
      log.warn('GetResponse failed', { error: res.error });
      return false;
    }
    const parsed = res.parsed;
    if (parsed.kind !== 'GetResponseResponse' || parsed.empty) return false;
    if (res.kind === 'untrusted') {
      // never use what the signature does not cover; tell SMEV the message was not accepted
      await this.d.store.query(
        `INSERT INTO smev_inbound (message_id, original_message_id, outcome) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [parsed.messageId, parsed.originalMessageId ?? null, `rejected: ${res.reason}`]);
      log.error('response with an invalid SMEV signature rejected', { messageId: parsed.messageId, reason: res.reason });
      await client.ack(parsed.messageId, false);
      return true;
    }
    this.received++;
    const followUp = await this.apply(parsed);
    if (followUp?.packet) await this.d.publishPacket(followUp.packet.id, followUp.packet.messageId);
    if (followUp?.payments?.length) await this.d.publishPayments(followUp.payments);
    // a follow-up (the next registry page request) runs while the answer is acknowledged: it is committed already
    const next = followUp?.after?.().catch((e: unknown) => log.error('follow-up of a response failed', { messageId: parsed.messageId, err: e }));
    const a = await client.ack(parsed.messageId, true);
    await next;
    if (a.kind !== 'ok') log.warn('Ack failed; SMEV will deliver the message again', { messageId: parsed.messageId, result: a.kind });
    return true;
  }

  private async apply(r: ReceivedResponse): Promise<{ packet?: { id: number; messageId: string }; payments?: number[]; after?: () => Promise<void> } | undefined> {
    const { store, log } = this.d;
    return store.transaction(async (tx) => {
      const fresh = await store.query(
        `INSERT INTO smev_inbound (message_id, original_message_id, outcome) VALUES ($1, $2, 'processing') ON CONFLICT DO NOTHING RETURNING message_id`,
        [r.messageId, r.originalMessageId ?? null], tx);
      if (!fresh.length) return; // processed before; only the Ack was lost
      const reg = await this.d.registry?.onResponse(r, tx);
      if (reg) {
        await store.query('UPDATE smev_inbound SET outcome = $2 WHERE message_id = $1', [r.messageId, reg.outcome], tx);
        return { after: reg.after };
      }
      const [pk] = await store.query<{ id: number; status: string }>(
        `SELECT id, status FROM packets WHERE message_id = $1 OR $1 = ANY(previous_message_ids) FOR UPDATE`, [r.originalMessageId], tx);
      const setOutcome = (o: string) => store.query('UPDATE smev_inbound SET outcome = $2 WHERE message_id = $1', [r.messageId, o], tx);
      if (!pk) {
        log.warn('response for an unknown request', { messageId: r.messageId, originalMessageId: r.originalMessageId });
        await setOutcome('unknown original message');
        return;
      }
      const plog = log.child({ packetId: pk.id, messageId: r.originalMessageId });
      if (r.asyncStatus) {
        const s = r.asyncStatus;
        if (s.category === 'requestIsRejectedBySmev' || s.category === 'responseIsRejectedBySmev') {
          const code = s.fault?.code ?? s.category;
          const text = [s.fault?.description ?? s.details, ...(s.fault?.validationErrors ?? [])].filter(Boolean).join('; ');
          await store.query(`UPDATE packets SET status = 'SMEV_REJECTED', responded_at = now(), last_error = $2, rejected = items WHERE id = $1`,
            [pk.id, `${code}: ${text}`], tx);
          await this.finishPayments(pk.id, [], { code, text }, tx);
          plog.error('packet rejected by SMEV', { code, text });
          await setOutcome(`packet ${pk.id} rejected by SMEV`);
        } else {
          plog.info('SMEV status', { category: s.category, details: s.details });
          await setOutcome(`status ${s.category}`);
        }
        return;
      }
      if (!r.content) {
        await setOutcome('response without content');
        return;
      }
      const result = parseImportResult(r.contentElement ?? r.content);
      if ('packetError' in result && REBUILD_CODES.has(result.packetError.code)) {
        const e = result.packetError;
        const fresh = uuidv1();
        await store.query(
          `UPDATE packets SET previous_message_ids = previous_message_ids || message_id, message_id = $2, status = 'BUILT',
                  attempts = attempts + 1, last_error = $3 WHERE id = $1`, [pk.id, fresh, `${e.code}: ${e.description}`], tx);
        await store.query(
          `WITH u AS (UPDATE payments SET status = 'PACKED', updated_at = now() WHERE packet_id = $1 AND status = 'SENT' RETURNING id)
           INSERT INTO payment_events (payment_id, status, detail)
           SELECT id, 'PACKED', jsonb_build_object('rebuild', $2::text, 'messageId', $3::text) FROM u`, [pk.id, e.code, fresh], tx);
        plog.warn('ГИС asks to transfer again: packet rebuilt with a new MessageID', { code: e.code, newMessageId: fresh });
        await setOutcome(`packet ${pk.id} rebuilt after ${e.code}`);
        return { packet: { id: pk.id, messageId: fresh } };
      }
      let again: number[] = [];
      if (!('packetError' in result)) {
        // items ГИС asks to transfer again go back to the batcher (same order-id and transport-id, a new packet)
        const retry = result.results.filter((x) => !x.success && x.errors?.length && x.errors.every((e) => REBUILD_CODES.has(e.code)));
        if (retry.length) {
          const rows = await store.query<{ id: number }>(
            `UPDATE payments SET status = 'REPORTABLE', packet_id = NULL, updated_at = now()
             WHERE packet_id = $1 AND status = 'SENT' AND transport_id::text = ANY($2::text[]) RETURNING id`,
            [pk.id, retry.map((x) => x.transportId.toLowerCase())], tx);
          again = rows.map((x) => x.id);
          await store.query(
            `INSERT INTO payment_events (payment_id, status, detail) SELECT id, 'REPORTABLE', jsonb_build_object('rebuild', 'EXP001000', 'packetId', $2::bigint)
             FROM unnest($1::bigint[]) AS id`, [again, pk.id], tx);
          result.results = result.results.filter((x) => !retry.includes(x));
        }
      }
      if ('packetError' in result) {
        const e = result.packetError;
        await this.finishPayments(pk.id, [], { code: e.code, text: e.description }, tx);
        await store.query(`UPDATE packets SET status = 'RESPONDED', responded_at = now(), rejected = items, last_error = $2 WHERE id = $1`,
          [pk.id, `${e.code}: ${e.description}`], tx);
        plog.warn('packet-level error from ГИС', { code: e.code, description: e.description });
      } else {
        const [counts] = await this.finishPayments(pk.id, result.results, undefined, tx);
        await store.query(`UPDATE packets SET status = 'RESPONDED', responded_at = now(), accepted = $2, rejected = $3 WHERE id = $1`,
          [pk.id, counts.accepted, counts.rejected], tx);
        plog.info('packet answered', { ...counts, again: again.length });
      }
      await setOutcome(`applied to packet ${pk.id}`);
      return { payments: again };
    });
  }

  /** Applies per-transport-id results; a sent item without a result is rejected as MISSING_RESULT. */
  private async finishPayments(
    packetId: number,
    results: { transportId: string; success?: { id: string; updateDate?: string }; errors?: { code: string; description: string }[] }[],
    all: { code: string; text: string } | undefined,
    tx: Parameters<Store['query']>[2],
  ): Promise<{ accepted: number; rejected: number }[]> {
    // results keyed by transport-id (lower case, as uuid::text prints it; the first of duplicates counts): the
    // UPDATE looks each payment's result up in this object, so its plan is one scan of the packet's payments
    // whatever the planner estimates (a join against json_to_recordset could turn into a 500 × 500 nested loop)
    const byTransportId: Record<string, { gis_id: string | null; code: string | null; text: string | null }> = {};
    for (const x of results) {
      const key = x.transportId.toLowerCase();
      if (Object.hasOwn(byTransportId, key)) continue;
      byTransportId[key] = {
        gis_id: x.success?.id ?? null,
        code: x.success ? null : x.errors?.map((e) => e.code).join(',') ?? 'NO_RESULT',
        text: x.success ? null : x.errors?.map((e) => e.description).join('; ') ?? null,
      };
    }
    return this.d.store.query<{ accepted: number; rejected: number }>(
      `WITH u AS (
         UPDATE payments p SET
           status = CASE WHEN $3::text IS NULL AND $2::jsonb -> p.transport_id::text ->> 'gis_id' IS NOT NULL THEN 'ACCEPTED' ELSE 'REJECTED' END,
           gis_id = CASE WHEN $3::text IS NULL THEN $2::jsonb -> p.transport_id::text ->> 'gis_id' END,
           error_code = CASE WHEN $3::text IS NOT NULL THEN $3 WHEN NOT coalesce($2::jsonb ? p.transport_id::text, false) THEN 'MISSING_RESULT'
                             ELSE $2::jsonb -> p.transport_id::text ->> 'code' END,
           error_text = CASE WHEN $3::text IS NOT NULL THEN $4 WHEN NOT coalesce($2::jsonb ? p.transport_id::text, false) THEN 'ГИС returned no result for this transport-id'
                             ELSE $2::jsonb -> p.transport_id::text ->> 'text' END,
           updated_at = now()
         WHERE p.packet_id = $1 AND p.status IN ('SENT', 'PACKED')
         RETURNING p.id, p.status, p.gis_id, p.error_code, p.error_text),
       e AS (
         INSERT INTO payment_events (payment_id, status, detail)
         SELECT id, status, jsonb_strip_nulls(jsonb_build_object('gisId', gis_id, 'errorCode', error_code, 'errorText', error_text)) FROM u
         RETURNING 1)
       SELECT count(*) FILTER (WHERE status = 'ACCEPTED')::int AS accepted, count(*) FILTER (WHERE status = 'REJECTED')::int AS rejected FROM u`,
      [packetId, JSON.stringify(byTransportId), all?.code ?? null, all?.text ?? null], tx);
  }
}

type ReceivedResponse = Extract<ReturnType<typeof parseSmevResponse>, { kind: 'GetResponseResponse'; empty: false }>;
