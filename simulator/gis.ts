import { v4 as uuidv4 } from 'uuid';
import { parseNotificationPacket, type NotificationItem } from '../transformers/gis/notification.ts';
import { buildImportResult, type ImportItemResult } from '../transformers/gis/result.ts';
import type { PayeeRecord } from '../transformers/payment.ts';

/**
 * A string that does not keep its source alive: text read from a parsed document is a slice of the whole request
 * (V8 sliced strings), and a key kept for good kept every 0.5 MB request with it (2.8 GB at 1 M payments).
 */
export function ownCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Error codes the simulated ГИС answers per item (README, "Simulator"). */
export const GIS_ERRORS = {
  unknownPayee: { code: 'INT002000', description: 'Получатель платежа с указанными реквизитами не найден в ГИС ЖКХ' },
  badIdentifier: { code: 'FMT001301', description: 'Некорректный формат идентификатора' },
  badAmount: { code: 'FMT001302', description: 'Некорректная сумма платежа' },
} as const;

const ID_RE = {
  paymentDocumentId: /^\d{2}[А-ЯЁ]{2}\d{6}-\d{2}-\d{4}$/,
  serviceId: /^\d{2}[А-ЯЁ]{2}\d{6}-\d{2}$/,
  els: /^\d{2}[А-ЯЁ]{2}\d{6}$/,
};

/**
 * The ГИС ЖКХ side of ВС 95858: decides per notification, and remembers every accepted order-id
 * (ГИС answers a repeated order-id with the GUID it gave the first time, and counts the repeat).
 */
export class GisPayments {
  readonly accepted = new Map<string, { guid: string; amountKop: number; times: number; updateDate: string }>();
  private byRequisites = new Set<string>();
  private byInn = new Set<string>();

  constructor(payees: PayeeRecord[], private opts: { acceptUnknownPayees?: boolean; knows?: (bic: string, account: string) => boolean } = {}) {
    for (const p of payees) {
      this.byRequisites.add(`${p.bic}/${p.account}`);
      this.byInn.add(p.inn);
    }
  }

  /** `packet`: the packet's text, or its element already parsed */
  answer(packet: string | Element, now = new Date()): string {
    const parsed = parseNotificationPacket(packet);
    return buildImportResult({ results: parsed.items.map((it) => this.decide(it, now)) });
  }

  private decide(it: NotificationItem, now: Date): ImportItemResult {
    const err = (e: { code: string; description: string }) => ({ transportId: it.transportId, errors: [e] });
    if (!Number.isSafeInteger(it.amountKop) || it.amountKop <= 0) return err(GIS_ERRORS.badAmount);
    for (const [k, re] of Object.entries(ID_RE)) {
      const v = (it as unknown as Record<string, string | undefined>)[k];
      if (v !== undefined && !re.test(v)) return err({ ...GIS_ERRORS.badIdentifier, description: `${GIS_ERRORS.badIdentifier.description}: ${v}` });
    }
    const known = this.byRequisites.has(`${it.recipient.bic}/${it.recipient.account}`) || !!this.opts.knows?.(it.recipient.bic, it.recipient.account);
    if (!known && !this.opts.acceptUnknownPayees) {
      return err({ ...GIS_ERRORS.unknownPayee, description: `${GIS_ERRORS.unknownPayee.description}: БИК ${it.recipient.bic}, счёт ${it.recipient.account}` });
    }
    const prev = this.accepted.get(it.orderId);
    if (prev) {
      prev.times++;
      return { transportId: it.transportId, success: { id: prev.guid, updateDate: prev.updateDate } };
    }
    const rec = { guid: uuidv4(), amountKop: it.amountKop, times: 1, updateDate: now.toISOString() };
    this.accepted.set(ownCopy(it.orderId), rec);
    return { transportId: it.transportId, success: { id: rec.guid, updateDate: rec.updateDate } };
  }
}
