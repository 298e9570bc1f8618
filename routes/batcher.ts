import { v1 as uuidv1, v4 as uuidv4 } from 'uuid';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import { ack, type BusMessage, type Outcome } from '../connectors/amqp/broker.ts';

export const GIS_SCHEMA_VERSION = 'payments-1.0.0';

interface Waiting { paymentId: number; resolve: (o: Outcome) => void }

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
 * before anything is sent. A message is acknowledged only after its packet is committed and announced.
 */
export class Batcher {
  private waiting: Waiting[] = [];
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  packetsBuilt = 0;

  constructor(private d: BatcherDeps) {}

  handle = (m: BusMessage): Promise<Outcome> => {
    const id = Number((m.body as { paymentId?: unknown })?.paymentId);
    if (!Number.isSafeInteger(id) || id <= 0) return Promise.resolve({ kind: 'park', reason: 'body has no valid paymentId' });
    return new Promise<Outcome>((resolve) => {
      this.waiting.push({ paymentId: id, resolve });
      if (this.waiting.length >= this.d.maxItems) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.d.maxWaitMs);
    });
  };

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0, this.d.maxItems);
    if (this.waiting.length) this.timer = setTimeout(() => this.flushNow(), this.d.maxWaitMs);
    if (!batch.length) return;
    this.flushing = this.flushing.then(() => this.flush(batch));
  }

  private async flush(batch: Waiting[]): Promise<void> {
    try {
      const ids = [...new Set(batch.map((w) => w.paymentId))];
      const packet = await this.pack(ids);
      if (packet) await this.d.publishPacket(packet.id, packet.messageId);
      for (const w of batch) w.resolve(ack);
    } catch (e) {
      this.d.log.error('packing failed; payments will be retried', { err: e, payments: batch.length });
      for (const w of batch) w.resolve({ kind: 'retry', reason: `packing failed: ${(e as Error).message}` });
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
        `UPDATE payments p SET status = 'PACKED', packet_id = $2, transport_id = x.transport_id::uuid, updated_at = now()
         FROM json_to_recordset($1::json) AS x(id bigint, transport_id text) WHERE p.id = x.id`,
        [JSON.stringify(assign), pk.id], tx);
      await store.query(
        `INSERT INTO payment_events (payment_id, status, detail)
         SELECT x.id, 'PACKED', jsonb_build_object('packetId', $2::bigint, 'messageId', $3::text, 'transportId', x.transport_id)
         FROM json_to_recordset($1::json) AS x(id bigint, transport_id text)`,
        [JSON.stringify(assign), pk.id, messageId], tx);
      this.packetsBuilt++;
      this.d.log.info('packet built', { packetId: pk.id, messageId, items: rows.length });
      return { id: pk.id, messageId, items: rows.length };
    });
  }

  /** Flushes whatever is waiting (graceful shutdown). */
  async drain(): Promise<void> {
    while (this.waiting.length) this.flushNow();
    await this.flushing;
  }
}
