import { v1 as uuidv1, v4 as uuidv4 } from 'uuid';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import { ack, type BusMessage, type Outcome } from '../connectors/amqp/broker.ts';

export const GIS_SCHEMA_VERSION = 'payments-1.0.0';

/** Payment ids per payment.reportable message (the intake, the sweeper and the poller announce in chunks). */
export const IDS_PER_MESSAGE = 500;

/** One payment.reportable message: body { paymentIds: number[] } (or the older { paymentId }). */
interface Waiting {
  /** ids of this message not yet packed and announced */
  remaining: number;
  settled: boolean;
  resolve: (o: Outcome) => void;
}

/** Reads the ids of a payment.reportable body; undefined when it carries none that is valid. */
export function paymentIdsOf(body: unknown): number[] | undefined {
  const b = body as { paymentId?: unknown; paymentIds?: unknown } | null;
  const raw = Array.isArray(b?.paymentIds) ? b.paymentIds : b?.paymentId !== undefined ? [b.paymentId] : [];
  const ids = raw.map(Number);
  if (!ids.length || ids.length > 10_000 || ids.some((id) => !Number.isSafeInteger(id) || id <= 0)) return undefined;
  return ids;
}

/** Splits ids into payment.reportable bodies of at most `size` ids. */
export function chunkIds(ids: number[], size = IDS_PER_MESSAGE): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < ids.length; i += size) out.push(ids.slice(i, i + size));
  return out;
}

export interface BatcherDeps {
  store: Store;
  log: Logger;
  maxItems: number;
  maxWaitMs: number;
  /** publishes packet.ready with a confirm */
  publishPacket: (packetId: number, messageId: string) => Promise<void>;
}

/**
 * The aggregator: reportable payments → packets of at most maxItems, one SMEV MessageID each, fixed here,
 * before anything is sent. A message (a chunk of up to 500 payment ids) is acknowledged only after every
 * packet holding one of its payments is committed and announced; a failure sends the whole message to a
 * retry tier, where the ids already packed are skipped (only REPORTABLE rows are packed).
 */
export class Batcher {
  private ids: { id: number; msg: Waiting }[] = [];
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  packetsBuilt = 0;

  constructor(private d: BatcherDeps) {}

  handle = (m: BusMessage): Promise<Outcome> => {
    const ids = paymentIdsOf(m.body);
    if (!ids) return Promise.resolve({ kind: 'park', reason: 'body has no valid paymentId' });
    return new Promise<Outcome>((resolve) => {
      const msg: Waiting = { remaining: ids.length, settled: false, resolve };
      for (const id of ids) this.ids.push({ id, msg });
      while (this.ids.length >= this.d.maxItems) this.flushNow();
      if (this.ids.length) this.timer ??= setTimeout(() => this.flushNow(), this.d.maxWaitMs);
    });
  };

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.ids.splice(0, this.d.maxItems);
    if (this.ids.length) this.timer = setTimeout(() => this.flushNow(), this.d.maxWaitMs);
    if (!batch.length) return;
    this.flushing = this.flushing.then(() => this.flush(batch));
  }

  private async flush(batch: { id: number; msg: Waiting }[]): Promise<void> {
    try {
      const ids = [...new Set(batch.map((w) => w.id))];
      const packet = await this.pack(ids);
      if (packet) await this.d.publishPacket(packet.id, packet.messageId);
      for (const w of batch) {
        if (--w.msg.remaining === 0 && !w.msg.settled) {
          w.msg.settled = true;
          w.msg.resolve(ack);
        }
      }
    } catch (e) {
      this.d.log.error('packing failed; payments will be retried', { err: e, payments: batch.length });
      for (const w of batch) {
        if (w.msg.settled) continue;
        w.msg.settled = true;
        w.msg.resolve({ kind: 'retry', reason: `packing failed: ${(e as Error).message}` });
      }
    }
  }

  /** Returns the packet, or undefined when every payment was already packed (a redelivery). */
  async pack(paymentIds: number[]): Promise<{ id: number; messageId: string; items: number } | undefined> {
    const { store } = this.d;
    return store.transaction(async (tx) => {
      const rows = await store.query<{ id: number; transport_id: string | null }>(
        `SELECT id, transport_id FROM payments WHERE id = ANY($1::bigint[]) AND status = 'REPORTABLE' ORDER BY id FOR UPDATE SKIP LOCKED`,
        [paymentIds], tx);
      if (!rows.length) return undefined;
      const messageId = uuidv1();
      const [pk] = await store.query<{ id: number }>(
        `INSERT INTO packets (message_id, status, form, schema_version, items) VALUES ($1, 'BUILT', 'full', $2, $3) RETURNING id`,
        [messageId, GIS_SCHEMA_VERSION, rows.length], tx);
      const assign = rows.map((r) => ({ id: r.id, transport_id: r.transport_id ?? uuidv4() }));
      await store.query(
        `WITH x AS (SELECT * FROM json_to_recordset($1::json) AS x(id bigint, transport_id text)),
         u AS (UPDATE payments p SET status = 'PACKED', packet_id = $2, transport_id = x.transport_id::uuid, updated_at = now()
               FROM x WHERE p.id = x.id RETURNING p.id)
         INSERT INTO payment_events (payment_id, status, detail)
         SELECT x.id, 'PACKED', jsonb_build_object('packetId', $2::bigint, 'messageId', $3::text, 'transportId', x.transport_id) FROM x`,
        [JSON.stringify(assign), pk.id, messageId], tx);
      this.packetsBuilt++;
      this.d.log.info('packet built', { packetId: pk.id, messageId, items: rows.length });
      return { id: pk.id, messageId, items: rows.length };
    });
  }

  /** Flushes whatever is waiting (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.ids.length) this.flushNow();
    await this.flushing;
  }
}
