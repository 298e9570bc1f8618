import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadSchemaSet, validate } from '../connectors/xsd/validator.ts';
import {
  buildNotificationPacket,
  NotificationPacketError,
  orderId,
  parseNotificationPacket,
  type NotificationItem,
} from '../transformers/gis/notification.ts';
import { buildImportResult, parseImportResult } from '../transformers/gis/result.ts';

const ISID = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const ORG = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const tid = (n: number) => `0b6c7d1e-1111-4a2b-9c3d-${String(n).padStart(12, '0')}`;

function item(n: number, extra: Partial<NotificationItem> = {}): NotificationItem {
  return {
    transportId: tid(n),
    orderId: orderId({ bic: '044525225', date: '2021-02-25', sourceKey: `ED101:${n}` }),
    orderDate: '2021-02-25',
    amountKop: 2493151 + n,
    purpose: 'Оплата ЖКУ за 01.2021 л/с 12345 <ООО "Рога & Копыта"> \'кв. 5\'',
    paymentDocumentNumber: 'ПД-0001',
    recipient: {
      inn: '7701234567',
      kpp: '770101001',
      name: 'ООО «УК "Дом & Сад"» <ЖКХ>',
      bankName: 'ПАО Сбербанк',
      bic: '044525225',
      account: '40702810938000000001',
      corrAccount: '30101810400000000225',
    },
    ...extra,
  };
}

const full = (n: number) =>
  item(n, {
    paymentDocumentId: '12АБ345678-01-1234',
    serviceId: '12АБ345678-01',
    els: '12АБ345678',
    accountNumber: 'ЛС-000123',
    period: { year: 2021, month: 1 },
  });

test('packet (full form, all optional identifiers) is valid against the provisional XSD', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const xml = buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: [full(1), full(2)] });
  t.false(xml.startsWith('<?xml'));
  t.true(xml.includes('<ns2:order-date>2021-02-25+03:00</ns2:order-date>'));
  t.true(xml.includes('&lt;ООО "Рога &amp; Копыта"&gt;'));
  const r = await validate(xml, set);
  t.deepEqual(r.errors, []);
  t.true(r.valid);
});

test('packet without optional identifiers, entrepreneur without KPP, other timezone is valid', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const it = item(3, { purpose: undefined, paymentDocumentNumber: undefined });
  it.recipient = { inn: '770123456789', name: 'ИП Иванов И.И.', bankName: 'Банк', bic: '044525225', account: '40802810938000000001' };
  const xml = buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: [it, item(4)], timezone: '+05:00' });
  t.true(xml.includes('+05:00</ns2:order-date>'));
  t.true(xml.includes('<ns2:entpr-fio>ИП Иванов И.И.</ns2:entpr-fio>'));
  const r = await validate(xml, set);
  t.deepEqual(r.errors, []);
});

test('500 items are fine, 501 throw TOO_MANY_ITEMS; max is configurable', async (t) => {
  const items = Array.from({ length: 501 }, (_, i) => item(i + 10));
  const xml = buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: items.slice(0, 500) });
  const set = await loadSchemaSet('gis-payments-1.0.0');
  t.true((await validate(xml, set)).valid);
  const e = t.throws(() => buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items }), { instanceOf: NotificationPacketError });
  t.is(e!.code, 'TOO_MANY_ITEMS');
  t.throws(() => buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: items.slice(0, 3) }, 2), {
    instanceOf: NotificationPacketError,
  });
  // the XSD also caps the packet at 500: hand-made 501-item packet fails
  const bigger = xml.replace(
    /(<ns2:notification-of-order-execution>.*?<\/ns2:notification-of-order-execution>)/,
    `$1${buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: [item(9999)] }).match(/<ns2:notification-of-order-execution>.*<\/ns2:notification-of-order-execution>/)![0]}`,
  );
  const r = await validate(bigger, set);
  t.false(r.valid);
});

test('builder rejects bad order-id, fractional amount, duplicates with typed errors', (t) => {
  const b = (items: NotificationItem[]) => () => buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items });
  let e = t.throws(b([item(1, { orderId: 'ABC' })]), { instanceOf: NotificationPacketError });
  t.is(e!.code, 'INVALID_FIELD');
  t.is(e!.field, 'orderId');
  e = t.throws(b([item(1, { amountKop: 100.5 })]), { instanceOf: NotificationPacketError });
  t.is(e!.field, 'amountKop');
  e = t.throws(b([item(1), item(2, { transportId: tid(1) })]), { instanceOf: NotificationPacketError });
  t.is(e!.code, 'DUPLICATE_TRANSPORT_ID');
  e = t.throws(b([item(1), item(2, { orderId: item(1).orderId })]), { instanceOf: NotificationPacketError });
  t.is(e!.code, 'DUPLICATE_ORDER_ID');
  e = t.throws(b([]), { instanceOf: NotificationPacketError });
  t.is(e!.code, 'EMPTY_PACKET');
  t.throws(b([item(1, { orderDate: '2021-02-30' })]), { instanceOf: NotificationPacketError });
  t.throws(b([item(1, { purpose: 'x'.repeat(1001) })]), { instanceOf: NotificationPacketError });
});

test('XSD rejects a bad order-id length and a fractional amount', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const xml = buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items: [item(1)] });
  const badId = xml.replace(/<ns2:order-id>[^<]+</, '<ns2:order-id>4044525225250221ABC<');
  const badAmount = xml.replace(/<ns2:amount>\d+</, '<ns2:amount>2493151.50<');
  const badTid = xml.replace(/<transport-id>[^<]+</, '<transport-id>not-a-uuid<');
  const [r1, r2, r3] = await Promise.all([validate(badId, set), validate(badAmount, set), validate(badTid, set)]);
  t.false(r1.valid);
  t.regex(r1.errors.map((e) => e.message).join('\n'), /order-id/);
  t.false(r2.valid);
  t.regex(r2.errors.map((e) => e.message).join('\n'), /amount/);
  t.false(r3.valid);
});

test('orderId is deterministic, 32 chars [0-9A-Za-z], "4"+BIC+DDMMYY prefix', (t) => {
  const a = orderId({ bic: '044525225', date: '2021-02-25', sourceKey: 'ED101:123:2021-02-25:1' });
  const b = orderId({ bic: '044525225', date: '2021-02-25', sourceKey: 'ED101:123:2021-02-25:1' });
  const c = orderId({ bic: '044525225', date: '2021-02-25', sourceKey: 'ED101:123:2021-02-25:2' });
  t.is(a, b);
  t.not(a, c);
  t.regex(a, /^[0-9A-Za-z]{32}$/);
  t.true(a.startsWith('4044525225250221'));
  const seen = new Set<string>();
  for (let i = 0; i < 20000; i++) seen.add(orderId({ bic: '044525225', date: '2021-02-25', sourceKey: `k${i}` }));
  t.is(seen.size, 20000);
  t.throws(() => orderId({ bic: '12345', date: '2021-02-25', sourceKey: 'x' }));
  t.throws(() => orderId({ bic: '044525225', date: '25.02.2021', sourceKey: 'x' }));
});

test('parseNotificationPacket returns the items', (t) => {
  const items = [full(1), item(2)];
  const xml = buildNotificationPacket({ informationSystemId: ISID, organizationId: ORG, items });
  const p = parseNotificationPacket(xml);
  t.is(p.informationSystemId, ISID);
  t.is(p.organizationId, ORG);
  t.false(p.shortForm);
  t.deepEqual(p.items, items);
});

test('buildImportResult → parseImportResult round trip (results and packet error), result is XSD-valid', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const r = {
    results: [
      { transportId: tid(1), success: { id: '5f2d8c1a-2222-4b3c-8d4e-000000000001', updateDate: '2021-02-26T10:15:00.000+03:00' } },
      { transportId: tid(2), errors: [{ code: 'INT002000', description: 'Не найден <получатель> & "платёж"' }, { code: 'X', description: 'y' }] },
    ],
  };
  const xml = buildImportResult(r);
  t.deepEqual(parseImportResult(xml), r);
  t.deepEqual((await validate(xml, set)).errors, []);
  const pe = { packetError: { code: 'EXP001000', description: 'Произошла ошибка при передаче данных' } };
  const xml2 = buildImportResult(pe);
  t.deepEqual(parseImportResult(xml2), pe);
  t.true((await validate(xml2, set)).valid);
});

test('parseImportResult: foreign prefixes, other common version, unknown elements ignored', (t) => {
  const xml = readFileSync(new URL('./fixtures/gis/import-result-foreign-prefixes.xml', import.meta.url), 'utf8');
  t.deepEqual(parseImportResult(xml), {
    results: [
      { transportId: tid(1), success: { id: '5f2d8c1a-2222-4b3c-8d4e-000000000001', updateDate: '2021-02-26T10:15:00.000+03:00' } },
      {
        transportId: tid(2),
        errors: [
          { code: 'INT002000', description: 'Получатель платежа не найден & не зарегистрирован' },
          { code: 'INT002034', description: 'Второй' },
        ],
      },
    ],
  });
});

test('parsers refuse DOCTYPE', (t) => {
  t.throws(() => parseImportResult('<!DOCTYPE x [<!ENTITY a "b">]><x/>'), { message: /DOCTYPE/ });
});
