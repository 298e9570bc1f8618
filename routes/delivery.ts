import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import type { BusMessage, Outcome } from '../connectors/amqp/broker.ts';
import { nextRetry, retrySince, type RetryPolicy } from '../connectors/amqp/retry.ts';

export interface DeliveryGuardOptions {
  store: Store;
  log: Logger;
  policy: RetryPolicy;
  /** the work queue the handler consumes */
  queue: string;
  parkedQueue: string;
  route: string;
  /** the retry queue of attempt n at index n-1 (what the broker publishes to) */
  retryQueues: string[];
}

/**
 * Wraps a consumer's handler: applies the retry policy (a retry past the message's last tier or end of life
 * becomes a park with "retries exhausted after N attempts: …") and records every retry and park in
 * PostgreSQL (`delivery_attempts`, `parked_messages`) before the broker moves the message. The broker then
 * publishes to the tier or the parked queue with the x-attempt / x-reason / x-history headers.
 */
export function guarded(handler: (m: GuardedMessage) => Promise<Outcome>, o: DeliveryGuardOptions): (m: BusMessage) => Promise<Outcome> {
  return async (bm) => {
    // decided once, before the handler runs, so that the handler (the sender parks its packet) and this guard agree
    const now = Date.now();
    const decision = nextRetry(o.policy, bm.attempt, retrySince(bm.headers, now), now);
    const m: GuardedMessage = { ...bm, retryExhausted: decision.exhausted };
    let outcome: Outcome;
    try {
      outcome = await handler(m);
    } catch (e) {
      o.log.error('handler failed', { queue: o.queue, messageId: m.messageId, err: e });
      outcome = { kind: 'retry', reason: (e as Error).message };
    }
    if (outcome.kind === 'ack') return outcome;
    if (outcome.kind === 'retry' && decision.exhausted) {
      outcome = { kind: 'park', reason: `retries exhausted after ${m.attempt} attempts: ${outcome.reason} [${decision.exhausted}]` };
    }
    try {
      await record(o, m, outcome);
    } catch (e) {
      // the headers still carry the history; a database outage must not hold the message
      o.log.warn('could not record the delivery attempt', { queue: o.queue, messageId: m.messageId, err: e });
    }
    return outcome;
  };
}

/** A delivery as a guarded handler sees it. */
export interface GuardedMessage extends BusMessage {
  /** set when a transient failure of this delivery will not be retried: why (tiers exhausted, end of life) */
  retryExhausted?: string;
}

export function bodyIds(body: unknown): { packetId: number | null; paymentId: number | null } {
  const b = (body ?? {}) as { packetId?: unknown; paymentId?: unknown };
  const n = (v: unknown) => (Number.isSafeInteger(Number(v)) && v !== null && v !== undefined && v !== '' ? Number(v) : null);
  return { packetId: n(b.packetId), paymentId: n(b.paymentId) };
}

async function record(o: DeliveryGuardOptions, m: BusMessage, outcome: Exclude<Outcome, { kind: 'ack' }>): Promise<void> {
  const { packetId, paymentId } = bodyIds(m.body);
  const tier = outcome.kind === 'retry' ? o.retryQueues[m.attempt - 1] ?? null : o.parkedQueue;
  const reason = outcome.reason.slice(0, 2000);
  await o.store.query(
    `INSERT INTO delivery_attempts (queue, message_id, packet_id, payment_id, attempt, outcome, tier, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [o.queue, m.messageId ?? null, packetId, paymentId, m.attempt, outcome.kind, tier, reason]);
  if (outcome.kind === 'park') {
    const prior = Array.isArray(m.headers['x-history']) ? (m.headers['x-history'] as unknown[]) : [];
    const history = [...prior, { at: new Date().toISOString(), attempt: m.attempt, outcome: 'park', reason: reason.slice(0, 500) }];
    await o.store.query(
      `INSERT INTO parked_messages (queue, parked_queue, route, message_id, packet_id, payment_id, reason, attempts, history)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
       ON CONFLICT (parked_queue, message_id) WHERE state = 'parked'
       DO UPDATE SET reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, history = EXCLUDED.history, parked_at = now()`,
      [o.queue, o.parkedQueue, o.route, m.messageId ?? `(no message id ${Date.now()})`, packetId, paymentId, reason, m.attempt, JSON.stringify(history)]);
  }
}
