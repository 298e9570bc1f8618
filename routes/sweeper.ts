import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';

export interface SweeperDeps {
  store: Store;
  log: Logger;
  /** announces payment.reportable for these ids (in chunks) */
  publishPayments: (paymentIds: number[]) => Promise<void>;
  publishPacket: (packetId: number, messageId: string) => Promise<void>;
  /** work older than this without progress is announced again */
  staleMs: number;
  /**
   * payment.reportable messages waiting in the broker (work queue and retry tiers). While there are any, REPORTABLE
   * payments are taken to be announced and queued, not lost: with a backlog (intake ahead of sending) every sweep
   * re-announced and touched up to 50 000 of them, a growing load that made a 1 M-payment run worse than linear.
   */
  paymentsQueued?: () => Promise<number>;
}

/**
 * Closes the gap between a database commit and the publish that follows it: after a crash in between,
 * REPORTABLE payments and BUILT packets would wait forever. Announcing them again is harmless because
 * the batcher and the sender are idempotent (they act only on rows still in that state).
 */
export class Sweeper {
  private timer?: NodeJS.Timeout;
  private busy?: Promise<void>;
  republished = 0;

  constructor(private d: SweeperDeps) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.busy;
  }

  /**
   * `startup`: also BUILT packets that were tried before (attempts > 0). While the bus runs, their message
   * waits in a retry tier; after a restart it may have been lost with a publish that never happened (e.g. the
   * poller's rebuild after EXP001000). Announcing one twice is harmless: the sender acts only on BUILT packets,
   * and the same MessageID sent twice is `MessageIsAlreadySent`.
   */
  sweep(staleMs = this.d.staleMs, startup = false): Promise<void> {
    this.busy ??= this.run(staleMs, startup).finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async run(staleMs: number, startup: boolean): Promise<void> {
    const { store, log } = this.d;
    try {
      // at start-up every left-over is announced; a broker that cannot say how much is queued does not stop the sweep
      const queued = startup || !this.d.paymentsQueued ? 0 : await this.d.paymentsQueued().catch(() => 0);
      const payments = queued > 0 ? [] : await store.query<{ id: number }>(
        // packet_id IS NULL AND order_id IS NOT NULL: the partial index payments_unpacked (every REPORTABLE row is in it)
        `SELECT id FROM payments WHERE packet_id IS NULL AND order_id IS NOT NULL AND status = 'REPORTABLE'
           AND updated_at < now() - make_interval(secs => $1::double precision / 1000) ORDER BY id LIMIT 50000`,
        [staleMs]);
      if (payments.length) await this.d.publishPayments(payments.map((p) => p.id));
      const packets = await store.query<{ id: number; message_id: string }>(
        `SELECT id, message_id FROM packets WHERE status = 'BUILT' AND (attempts = 0 OR $2) AND created_at < now() - make_interval(secs => $1::double precision / 1000)`,
        [staleMs, startup]);
      for (const p of packets) await this.d.publishPacket(p.id, p.message_id);
      if (payments.length || packets.length) {
        // touch them so that the next sweep waits another staleMs
        if (payments.length) await store.query(`UPDATE payments SET updated_at = now() WHERE id = ANY($1::bigint[])`, [payments.map((p) => p.id)]);
        this.republished += payments.length + packets.length;
        log.info('re-announced stalled work', { payments: payments.length, packets: packets.length });
      }
    } catch (e) {
      log.warn('sweep failed', { err: e });
    }
  }
}
