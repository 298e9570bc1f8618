import { v1 as uuidv1 } from 'uuid';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';
import { ack, type Outcome } from '../connectors/amqp/broker.ts';
import type { GuardedMessage } from './delivery.ts';
import type { SmevClient } from '../connectors/smev3/client.ts';
import { writeNotificationPacket, NotificationPacketError, type NotificationItem } from '../transformers/gis/notification.ts';
import type { BuiltCanonicalRequest } from '../transformers/smev/envelope.ts';
import { faultDisposition } from '../transformers/smev/faults.ts';

export interface SenderDeps {
  store: Store;
  log: Logger;
  client: SmevClient;
  informationSystemId: string;
  organizationId: string;
  /** validates the ГИС document against our XSD before it is signed */
  validate: (xml: string) => Promise<{ valid: boolean; errors: { message: string; line?: number }[] }>;
  onSent: () => void;
}

interface PaymentItemRow {
  id: number; transport_id: string; order_id: string; payment_date: string | Date; amount_kop: number; purpose: string;
  doc_no: string | null; recipient: NotificationItem['recipient']; payment_document_id: string | null; service_id: string | null;
  els: string | null; account_number: string | null; period_year: number | null; period_month: number | null;
}

/** The SMEV 3 sending endpoint: packet.ready → ГИС XML → XSD check → signed SendRequest → SENT | retry | park. */
export class Sender {
  sent = 0;
  constructor(private d: SenderDeps) {}

  /** `m.retryExhausted` (set by routes/delivery.ts from the retry policy): a transient failure now parks the packet */
  handle = async (m: GuardedMessage): Promise<Outcome> => {
    const packetId = Number((m.body as { packetId?: unknown })?.packetId);
    if (!Number.isSafeInteger(packetId)) return { kind: 'park', reason: 'body has no valid packetId' };
    const outcome = await this.send(packetId);
    const why = outcome.kind === 'retry' ? m.retryExhausted : undefined;
    if (outcome.kind === 'retry' && why) {
      const reason = `retries exhausted after ${m.attempt} attempts: ${outcome.reason} [${why}]`;
      await this.park(packetId, reason);
      return { kind: 'park', reason };
    }
    return outcome;
  };

  async send(packetId: number): Promise<Outcome> {
    const { store, log, client } = this.d;
    const [pk] = await store.query<{ id: number; message_id: string; status: string }>(
      'SELECT id, message_id, status FROM packets WHERE id = $1', [packetId]);
    if (!pk) return { kind: 'park', reason: `packet ${packetId} does not exist` };
    if (pk.status !== 'BUILT' && pk.status !== 'PARKED') return ack; // already sent: a redelivery
    const plog = log.child({ packetId, messageId: pk.message_id });
    const rows = await store.query<PaymentItemRow>(
      `SELECT id, transport_id, order_id, payment_date, amount_kop, purpose, doc_no, recipient, payment_document_id, service_id, els,
              account_number, period_year, period_month FROM payments WHERE packet_id = $1 ORDER BY id`, [packetId]);
    let env: BuiltCanonicalRequest | undefined;
    // one bad item must not hold up the others: it is taken out of the packet as INVALID, the rest goes
    while (!env) {
      if (!rows.length) {
        await this.park(packetId, 'no item of the packet can be built');
        return { kind: 'park', reason: 'no item of the packet can be built' };
      }
      try {
        const packet = { informationSystemId: this.d.informationSystemId, organizationId: this.d.organizationId, items: rows.map(toItem) };
        env = client.buildSendRequest(pk.message_id, (w) => writeNotificationPacket(w, packet));
      } catch (e) {
        const i = e instanceof NotificationPacketError ? e.itemIndex : undefined;
        if (i === undefined || !rows[i]) {
          const reason = `packet cannot be built: ${(e as Error).message}`;
          await this.park(packetId, reason);
          return { kind: 'park', reason };
        }
        const [bad] = rows.splice(i, 1);
        await this.invalidate(packetId, bad.id, (e as Error).message);
        plog.warn('item taken out of the packet', { paymentId: bad.id, reason: (e as Error).message });
      }
    }
    const check = await this.d.validate(env.content);
    if (!check.valid) {
      const reason = `packet is not valid against schemas/gis/payments-1.0.0: ${check.errors.slice(0, 5).map((e) => e.message).join('; ')}`;
      await this.park(packetId, reason);
      return { kind: 'park', reason };
    }
    const res = await client.sendBuilt(env, pk.message_id, packetId);
    if (res.kind === 'ok' && res.parsed.kind === 'SendRequestResponse') {
      await this.markSent(packetId, `SMEV status ${res.parsed.status ?? 'queued'}`);
      plog.info('packet sent', { items: rows.length, status: res.parsed.status });
      return ack;
    }
    if (res.kind === 'fault') {
      const f = res.fault;
      const what = `${f.name}${f.description ? `: ${f.description}` : ''}`;
      switch (faultDisposition(f.name)) {
        case 'delivered':
          // SMEV already has this MessageID: an earlier attempt got through and only its answer was lost
          await this.markSent(packetId, `MessageIsAlreadySent: counted as delivered`);
          plog.info('packet already delivered earlier', { fault: f.name });
          return ack;
        case 'rebuild': {
          const fresh = uuidv1();
          await store.query(
            `UPDATE packets SET previous_message_ids = previous_message_ids || message_id, message_id = $2, attempts = attempts + 1,
                    last_error = $3 WHERE id = $1`, [packetId, fresh, what]);
          plog.warn('packet gets a new MessageID', { fault: f.name, newMessageId: fresh });
          return this.send(packetId);
        }
        case 'retry':
          await this.noteAttempt(packetId, what);
          return { kind: 'retry', reason: what };
        default:
          await this.park(packetId, what);
          plog.error('packet parked on SMEV fault', { fault: f.name, description: f.description });
          return { kind: 'park', reason: what };
      }
    }
    const reason = res.kind === 'transport' ? `SMEV unreachable: ${res.error}` : res.kind === 'untrusted' ? res.reason : 'unexpected SMEV answer';
    await this.noteAttempt(packetId, reason);
    plog.warn('packet send will be retried', { reason });
    return { kind: 'retry', reason };
  }

  private async invalidate(packetId: number, paymentId: number, reason: string): Promise<void> {
    const { store } = this.d;
    await store.transaction(async (tx) => {
      await store.query(`UPDATE payments SET status = 'INVALID', packet_id = NULL, error_text = $2, updated_at = now() WHERE id = $1`, [paymentId, reason], tx);
      await store.query(`UPDATE packets SET items = items - 1 WHERE id = $1`, [packetId], tx);
      await store.query(`INSERT INTO payment_events (payment_id, status, detail) VALUES ($1, 'INVALID', jsonb_build_object('reason', $2::text, 'packetId', $3::bigint))`,
        [paymentId, reason, packetId], tx);
    });
  }

  private async noteAttempt(packetId: number, error: string): Promise<void> {
    await this.d.store.query('UPDATE packets SET attempts = attempts + 1, last_error = $2 WHERE id = $1', [packetId, error]);
  }

  private async park(packetId: number, reason: string): Promise<void> {
    this.d.log.error('packet parked', { packetId, reason });
    await this.d.store.query(`UPDATE packets SET status = 'PARKED', last_error = $2 WHERE id = $1`, [packetId, reason]);
  }

  private async markSent(packetId: number, note: string): Promise<void> {
    const { store } = this.d;
    await store.transaction(async (tx) => {
      // only a packet not answered yet becomes SENT: after "MessageIsAlreadySent" the poller may already have
      // applied ГИС's answer (RESPONDED) from the first, lost-reply attempt; that must not be undone
      await store.query(
        `UPDATE packets SET status = 'SENT', attempts = attempts + 1, sent_at = now(), last_error = NULL
         WHERE id = $1 AND status IN ('BUILT', 'PARKED')`, [packetId], tx);
      await store.query(
        `WITH u AS (UPDATE payments SET status = 'SENT', updated_at = now() WHERE packet_id = $1 AND status = 'PACKED' RETURNING id)
         INSERT INTO payment_events (payment_id, status, detail) SELECT id, 'SENT', jsonb_build_object('packetId', $1::bigint, 'note', $2::text) FROM u`,
        [packetId, note], tx);
    });
    this.sent++;
    this.d.onSent();
  }
}

function toItem(r: PaymentItemRow): NotificationItem {
  const date = r.payment_date instanceof Date ? r.payment_date.toISOString().slice(0, 10) : String(r.payment_date).slice(0, 10);
  return {
    transportId: r.transport_id,
    orderId: r.order_id,
    orderDate: date,
    amountKop: r.amount_kop,
    purpose: r.purpose || undefined,
    paymentDocumentNumber: r.doc_no ?? undefined,
    recipient: r.recipient,
    paymentDocumentId: r.payment_document_id ?? undefined,
    serviceId: r.service_id ?? undefined,
    els: r.els ?? undefined,
    accountNumber: r.account_number ?? undefined,
    period: r.period_year && r.period_month ? { year: r.period_year, month: r.period_month } : undefined,
  };
}
