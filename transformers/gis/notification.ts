/**
 * ГИС ЖКХ payment notification packet (ВС 95858), provisional bundle gis-payments-1.0.0. Pure.
 *
 * Output shape (gis-zhkh.md §2.1, extended with §2.3 fields in kebab-case, hcs order):
 *   <ns2:ImportNotificationsOfOrderExecutionRequest xmlns="…/common/1.0.0" xmlns:ns2="…/payments/1.0.0" xmlns:ns3="…/payments-common/1.0.0">
 *     <information-system-id/> <organization-id/>
 *     <ns2:notification-of-order-execution>+ { transport-id, ns2:recipient-info, ns2:order-info }
 */
import { createHash } from 'node:crypto';
import { child, childElements, children, escapeText, parseXml, text } from '../smev/xml.ts';
import { GIS_PAYMENTS_1_0_0, isGisNs, type GisPaymentsBundle } from './namespaces.ts';
import { PrefixedXmlWriter, type XmlSink } from '../smev/canonical.ts';

export interface NotificationRecipient {
  inn: string;
  kpp?: string;
  name: string;
  bankName: string;
  bic: string;
  account: string;
  corrAccount?: string;
}

export interface NotificationItem {
  transportId: string;
  orderId: string;
  /** YYYY-MM-DD */
  orderDate: string;
  /** integer kopecks */
  amountKop: number;
  purpose?: string;
  paymentDocumentNumber?: string;
  recipient: NotificationRecipient;
  /** ИПД, 18 chars */
  paymentDocumentId?: string;
  /** ИЖКУ, 13 chars */
  serviceId?: string;
  /** ЕЛС, 10 chars */
  els?: string;
  /** payee's лицевой счёт */
  accountNumber?: string;
  period?: { year: number; month: number };
}

export interface NotificationPacketParams {
  informationSystemId: string;
  organizationId: string;
  items: NotificationItem[];
  /** offset appended to order-date; default "+03:00" */
  timezone?: string;
}

export type NotificationPacketErrorCode =
  | 'EMPTY_PACKET'
  | 'TOO_MANY_ITEMS'
  | 'DUPLICATE_TRANSPORT_ID'
  | 'DUPLICATE_ORDER_ID'
  | 'INVALID_FIELD';

export class NotificationPacketError extends Error {
  override name = 'NotificationPacketError';
  constructor(
    public readonly code: NotificationPacketErrorCode,
    message: string,
    /** index of the offending item, if any */
    public readonly itemIndex?: number,
    public readonly field?: string,
  ) {
    super(message);
  }
}

export const DEFAULT_MAX_ITEMS = 500;

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ORDER_ID_RE = /^[0-9A-Za-z]{32}$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TZ_RE = /^(Z|[+-](0\d|1[0-4]):[0-5]\d)$/;
const HAS_ALNUM = /[0-9A-Za-zА-Яа-яЁё]/;

function fail(field: string, msg: string, i?: number): never {
  throw new NotificationPacketError('INVALID_FIELD', `${i !== undefined ? `item ${i}: ` : ''}${field}: ${msg}`, i, field);
}

function validDate(s: string): boolean {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
}

function checkLen(v: string, field: string, min: number, max: number, i: number): void {
  if (v.length < min || v.length > max) fail(field, `length must be ${min === max ? min : `${min}..${max}`}, got ${v.length}`, i);
}

/** Characters XML 1.0 does not allow, as in assertXmlChars (C0 controls but TAB/LF/CR, lone surrogates, U+FFFE/FFFF). */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A text value that cannot go into the packet as it is: characters XML does not allow, or only whitespace (the
 * SMEV transform drops a whitespace-only text, so it would not be signed as sent).
 */
function checkText(v: string | undefined, field: string, i: number): void {
  if (v === undefined) return;
  if (NOT_XML_CHAR.test(v)) fail(field, 'contains characters not allowed in XML 1.0', i);
  if (!/[^\u0000-\u0020]/.test(v)) fail(field, 'must not be blank', i);
}

function checkItem(it: NotificationItem, i: number): void {
  checkText(it.purpose, 'purpose', i);
  checkText(it.paymentDocumentNumber, 'paymentDocumentNumber', i);
  checkText(it.accountNumber, 'accountNumber', i);
  checkText(it.paymentDocumentId, 'paymentDocumentId', i);
  checkText(it.serviceId, 'serviceId', i);
  checkText(it.els, 'els', i);
  if (it.recipient) {
    checkText(it.recipient.name, 'recipient.name', i);
    checkText(it.recipient.bankName, 'recipient.bankName', i);
    checkText(it.recipient.account, 'recipient.account', i);
    checkText(it.recipient.corrAccount, 'recipient.corrAccount', i);
  }
  if (!UUID_RE.test(it.transportId)) fail('transportId', 'must be a UUID', i);
  if (!ORDER_ID_RE.test(it.orderId)) fail('orderId', 'must be exactly 32 characters [0-9A-Za-z]', i);
  if (!validDate(it.orderDate)) fail('orderDate', `must be a valid YYYY-MM-DD date, got '${it.orderDate}'`, i);
  if (!Number.isSafeInteger(it.amountKop) || it.amountKop < 0) fail('amountKop', `must be a non-negative integer (kopecks), got ${it.amountKop}`, i);
  if (String(it.amountKop).length > 16) fail('amountKop', 'at most 16 digits', i);
  if (it.purpose !== undefined) checkLen(it.purpose, 'purpose', 1, 1000, i);
  if (it.paymentDocumentNumber !== undefined) {
    checkLen(it.paymentDocumentNumber, 'paymentDocumentNumber', 1, 30, i);
    if (!HAS_ALNUM.test(it.paymentDocumentNumber)) fail('paymentDocumentNumber', 'needs a letter or digit', i);
  }
  if (it.accountNumber !== undefined) {
    checkLen(it.accountNumber, 'accountNumber', 1, 30, i);
    if (!HAS_ALNUM.test(it.accountNumber)) fail('accountNumber', 'needs a letter or digit', i);
  }
  if (it.paymentDocumentId !== undefined) checkLen(it.paymentDocumentId, 'paymentDocumentId', 18, 18, i);
  if (it.serviceId !== undefined) checkLen(it.serviceId, 'serviceId', 13, 13, i);
  if (it.els !== undefined) checkLen(it.els, 'els', 10, 10, i);
  if (it.period) {
    const { year, month } = it.period;
    if (!Number.isInteger(year) || year < 1920 || year > 2050) fail('period.year', '1920..2050', i);
    if (!Number.isInteger(month) || month < 1 || month > 12) fail('period.month', '1..12', i);
  }
  const r = it.recipient;
  if (!r) fail('recipient', 'required', i);
  if (!/^(\d{10}|\d{12})$/.test(r.inn)) fail('recipient.inn', '10 or 12 digits', i);
  if (r.kpp !== undefined && !/^\d{9}$/.test(r.kpp)) fail('recipient.kpp', '9 digits', i);
  if (r.kpp === undefined && r.name.length > 160) fail('recipient.name', 'at most 160 characters for an entrepreneur (no KPP)', i);
  checkLen(r.name, 'recipient.name', 1, 4000, i);
  checkLen(r.bankName, 'recipient.bankName', 1, 255, i);
  if (!/^\d{9}$/.test(r.bic)) fail('recipient.bic', '9 digits', i);
  checkLen(r.account, 'recipient.account', 20, 20, i);
  if (r.corrAccount !== undefined) checkLen(r.corrAccount, 'recipient.corrAccount', 20, 20, i);
}

/**
 * Builds the ImportNotificationsOfOrderExecutionRequest element (no XML declaration).
 * Throws NotificationPacketError on an empty packet, more than `maxItems` items, duplicate
 * transport-id / order-id, or a field that the schema would reject.
 */
export function buildNotificationPacket(
  p: NotificationPacketParams,
  maxItems: number = DEFAULT_MAX_ITEMS,
  bundle: GisPaymentsBundle = GIS_PAYMENTS_1_0_0,
): string {
  const w = new PrefixedXmlWriter(new Map([[bundle.common, ''], [bundle.payments, 'ns2'], [bundle.paymentsCommon, 'ns3']]));
  writeNotificationPacket(w, p, maxItems, bundle);
  return w.toString();
}

/** Checks the packet (as buildNotificationPacket) and writes its element into `w`. */
export function writeNotificationPacket(
  w: XmlSink,
  p: NotificationPacketParams,
  maxItems: number = DEFAULT_MAX_ITEMS,
  bundle: GisPaymentsBundle = GIS_PAYMENTS_1_0_0,
): void {
  if (!UUID_RE.test(p.informationSystemId)) fail('informationSystemId', 'must be a UUID');
  if (!UUID_RE.test(p.organizationId)) fail('organizationId', 'must be a UUID');
  const tz = p.timezone ?? '+03:00';
  if (!TZ_RE.test(tz)) fail('timezone', `must be Z or ±HH:MM, got '${tz}'`);
  if (!p.items.length) throw new NotificationPacketError('EMPTY_PACKET', 'a packet needs at least one item');
  if (p.items.length > maxItems) {
    throw new NotificationPacketError('TOO_MANY_ITEMS', `a packet holds at most ${maxItems} items, got ${p.items.length}`);
  }
  const tids = new Map<string, number>();
  const oids = new Map<string, number>();
  p.items.forEach((it, i) => {
    checkItem(it, i);
    const t = it.transportId.toLowerCase();
    if (tids.has(t)) {
      throw new NotificationPacketError('DUPLICATE_TRANSPORT_ID', `item ${i}: transport-id ${it.transportId} already used by item ${tids.get(t)}`, i, 'transportId');
    }
    tids.set(t, i);
    if (oids.has(it.orderId)) {
      throw new NotificationPacketError('DUPLICATE_ORDER_ID', `item ${i}: order-id ${it.orderId} already used by item ${oids.get(it.orderId)}`, i, 'orderId');
    }
    oids.set(it.orderId, i);
  });

  const C = bundle.common;
  const P = bundle.payments;
  const PC = bundle.paymentsCommon;
  w.open(P, bundle.requestRoot);
  w.leaf(C, 'information-system-id', p.informationSystemId);
  w.leaf(C, 'organization-id', p.organizationId);
  for (const it of p.items) {
    const r = it.recipient;
    w.open(P, 'notification-of-order-execution');
    w.leaf(C, 'transport-id', it.transportId);
    w.open(P, 'recipient-info');
    w.leaf(P, 'inn', r.inn);
    if (r.kpp !== undefined) {
      w.open(P, 'legal');
      w.leaf(P, 'kpp', r.kpp);
      w.leaf(P, 'name', r.name);
      w.close();
    } else w.leaf(P, 'entpr-fio', r.name);
    w.open(P, 'payment-information');
    w.leaf(PC, 'recipient-inn', r.inn);
    if (r.kpp !== undefined) w.leaf(PC, 'recipient-kpp', r.kpp);
    w.leaf(PC, 'bank-name', r.bankName);
    w.leaf(PC, 'payment-recipient', r.name);
    w.leaf(PC, 'bik', r.bic);
    w.leaf(PC, 'operating-account-number', r.account);
    if (r.corrAccount !== undefined) w.leaf(PC, 'correspondent-bank-account', r.corrAccount);
    w.close(); // payment-information
    w.close(); // recipient-info
    w.open(P, 'order-info');
    w.leaf(P, 'order-id', it.orderId);
    w.leaf(P, 'order-date', `${it.orderDate}${tz}`);
    w.leaf(P, 'amount', String(it.amountKop));
    if (it.purpose !== undefined) w.leaf(P, 'payment-purpose', it.purpose);
    if (it.paymentDocumentId !== undefined) w.leaf(P, 'payment-document-id', it.paymentDocumentId);
    if (it.paymentDocumentNumber !== undefined) w.leaf(P, 'payment-document-number', it.paymentDocumentNumber);
    if (it.period) {
      w.leaf(P, 'year', String(it.period.year));
      w.leaf(P, 'month', String(it.period.month));
    }
    if (it.els !== undefined) w.leaf(P, 'unified-account-number', it.els);
    if (it.serviceId !== undefined) {
      w.open(P, 'service');
      w.leaf(P, 'service-id', it.serviceId);
      w.close();
    }
    if (it.accountNumber !== undefined) w.leaf(P, 'account-number', it.accountNumber);
    w.close(); // order-info
    w.close(); // notification-of-order-execution
  }
  w.close();
}

// ---------------------------------------------------------------------------------------------
// order-id

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Deterministic 32-character order-id, `[0-9A-Za-z]{32}`:
 *
 *   "4" + BIC (9 digits) + DDMMYY of `date` (6 digits) + 16 base62 characters
 *
 * The 16-character tail is the first 96 bits of SHA-256("gkh-bus/order-id/v1\n" + bic + "\n" + date + "\n" + sourceKey),
 * written in base62 (zero-padded; 62^16 > 2^95, and the 96-bit value is reduced mod 62^16, ≈95.3 bits kept).
 * The leading "4" follows the observed bank convention (gis-zhkh.md §2.1).
 * `sourceKey` must identify the bank document for good (e.g. "ED101:<EDNo>:<EDDate>:<row>"); the same
 * input always yields the same id; a corrected re-report must use a different sourceKey.
 * Collision probability for n ids with the same BIC and date ≈ n²/2^96 — negligible.
 */
export function orderId(input: { bic: string; date: string; sourceKey: string }): string {
  if (!/^\d{9}$/.test(input.bic)) throw new NotificationPacketError('INVALID_FIELD', `bic must be 9 digits, got '${input.bic}'`, undefined, 'bic');
  if (!validDate(input.date)) throw new NotificationPacketError('INVALID_FIELD', `date must be YYYY-MM-DD, got '${input.date}'`, undefined, 'date');
  if (!input.sourceKey) throw new NotificationPacketError('INVALID_FIELD', 'sourceKey is required', undefined, 'sourceKey');
  const [y, m, d] = input.date.split('-') as [string, string, string];
  const h = createHash('sha256').update(`gkh-bus/order-id/v1\n${input.bic}\n${input.date}\n${input.sourceKey}`, 'utf8').digest();
  let n = 0n;
  for (let i = 0; i < 12; i++) n = (n << 8n) | BigInt(h[i]!);
  let tail = '';
  for (let i = 0; i < 16; i++) {
    tail = B62[Number(n % 62n)]! + tail;
    n /= 62n;
  }
  return `4${input.bic}${d}${m}${y.slice(2)}${tail}`;
}

// ---------------------------------------------------------------------------------------------
// parsing (simulator)

export interface ParsedNotificationPacket {
  informationSystemId?: string;
  organizationId?: string;
  items: NotificationItem[];
  /** short-form items are reported with only the common fields */
  shortForm: boolean;
}

/**
 * Parses a notification packet leniently: payments/payments-common/common namespaces of any version,
 * any prefixes; unknown elements ignored. order-date offsets are stripped (orderDate = YYYY-MM-DD).
 */
export function parseNotificationPacket(xml: string | Element): ParsedNotificationPacket {
  const root = typeof xml === 'string' ? parseXml(xml).documentElement! : xml;
  if (root.localName !== 'ImportNotificationsOfOrderExecutionRequest' || !isGisNs(root.namespaceURI, 'payments')) {
    throw new Error(`not a notification packet: {${root.namespaceURI}}${root.localName}`);
  }
  const P = (ns: string | null) => isGisNs(ns, 'payments');
  const PC = (ns: string | null) => isGisNs(ns, 'payments-common') || isGisNs(ns, 'payments');
  const C = (ns: string | null) => isGisNs(ns, 'common');
  const t = (el: Element | undefined) => text(el)?.trim();
  const items: NotificationItem[] = [];
  let shortForm = false;
  for (const n of childElements(root)) {
    if (!P(n.namespaceURI)) continue;
    if (n.localName === 'notification-of-order-execution') {
      const ri = child(n, P, 'recipient-info');
      const oi = child(n, P, 'order-info');
      const pi = ri ? child(ri, P, 'payment-information') : undefined;
      const legal = ri ? child(ri, P, 'legal') : undefined;
      const amount = t(oi && child(oi, P, 'amount')) ?? '';
      const year = t(oi && child(oi, P, 'year'));
      const month = t(oi && child(oi, P, 'month'));
      const svc = oi ? child(oi, P, 'service') : undefined;
      const it: NotificationItem = {
        transportId: t(child(n, C, 'transport-id')) ?? '',
        orderId: t(oi && child(oi, P, 'order-id')) ?? '',
        orderDate: (t(oi && child(oi, P, 'order-date')) ?? '').slice(0, 10),
        amountKop: Number(amount),
        recipient: {
          inn: t(ri && child(ri, P, 'inn')) ?? t(pi && child(pi, PC, 'recipient-inn')) ?? '',
          name: t(legal && child(legal, P, 'name')) ?? t(ri && child(ri, P, 'entpr-fio')) ?? t(pi && child(pi, PC, 'payment-recipient')) ?? '',
          bankName: t(pi && child(pi, PC, 'bank-name')) ?? '',
          bic: t(pi && child(pi, PC, 'bik')) ?? '',
          account: t(pi && child(pi, PC, 'operating-account-number')) ?? '',
        },
      };
      const kpp = t(legal && child(legal, P, 'kpp')) ?? t(pi && child(pi, PC, 'recipient-kpp'));
      if (kpp !== undefined) it.recipient.kpp = kpp;
      const corr = t(pi && child(pi, PC, 'correspondent-bank-account'));
      if (corr !== undefined) it.recipient.corrAccount = corr;
      const opt = (local: string) => (oi ? text(child(oi, P, local)) : undefined);
      const purpose = opt('payment-purpose');
      if (purpose !== undefined) it.purpose = purpose;
      const pdn = opt('payment-document-number');
      if (pdn !== undefined) it.paymentDocumentNumber = pdn;
      const pdi = opt('payment-document-id');
      if (pdi !== undefined) it.paymentDocumentId = pdi.trim();
      const sid = t(svc && child(svc, P, 'service-id'));
      if (sid !== undefined) it.serviceId = sid;
      const els = opt('unified-account-number');
      if (els !== undefined) it.els = els.trim();
      const acc = opt('account-number');
      if (acc !== undefined) it.accountNumber = acc;
      if (year && month) it.period = { year: Number(year), month: Number(month) };
      items.push(it);
    } else if (n.localName === 'notification-of-order-execution-139') {
      shortForm = true;
      const year = t(child(n, P, 'year'));
      const month = t(child(n, P, 'month'));
      const it: NotificationItem = {
        transportId: t(child(n, C, 'transport-id')) ?? '',
        orderId: t(child(n, P, 'order-id')) ?? '',
        orderDate: (t(child(n, P, 'order-date')) ?? '').slice(0, 10),
        amountKop: Number(t(child(n, P, 'amount')) ?? ''),
        recipient: { inn: '', name: '', bankName: '', bic: '', account: '' },
      };
      const sid = t(child(n, P, 'service-id'));
      if (sid !== undefined) it.serviceId = sid;
      const pdi = t(child(n, P, 'payment-document-id'));
      if (pdi !== undefined) it.paymentDocumentId = pdi;
      if (year && month) it.period = { year: Number(year), month: Number(month) };
      items.push(it);
    }
  }
  return {
    informationSystemId: t(children(root, C, 'information-system-id')[0]),
    organizationId: t(children(root, C, 'organization-id')[0]),
    items,
    shortForm,
  };
}
