/**
 * The simulated ГИС remembers every accepted order-id (a repeat gets the same GUID). Keys read from a parsed packet
 * are slices of the whole request text, so remembering them kept every 0.5 MB request alive: 2.8 GB in the
 * benchmark's process at 1 M payments. Bug found by the 1 M benchmark run.
 */
import test from 'ava';
import v8 from 'node:v8';
import vm from 'node:vm';
import { GisPayments } from '../simulator/gis.ts';
import { buildNotificationPacket, orderId } from '../transformers/gis/notification.ts';
import { parseXml } from '../transformers/smev/xml.ts';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

test('answering 120 packets of 500 keeps the order-ids, not the packets', (t) => {
  const gis = new GisPayments([], { acceptUnknownPayees: true });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let p = 0; p < 120; p++) {
    const items = Array.from({ length: 500 }, (_, n) => ({
      transportId: `0b6c7d1e-1111-4a2b-9c3d-${String(n).padStart(12, '0')}`, orderId: orderId({ bic: '044525225', date: '2021-02-25', sourceKey: `ED:${p}:${n}` }),
      orderDate: '2021-02-25', amountKop: 100 + n, purpose: 'Оплата ЖКУ за 01.2021 л/с 12345. Без НДС',
      recipient: { inn: '7701234567', kpp: '770101001', name: 'ООО «УК Дом»', bankName: 'ПАО Сбербанк', bic: '044525225', account: '40702810938000000001' },
    }));
    const xml = buildNotificationPacket({ informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', items });
    gis.answer(parseXml(xml).documentElement!);
  }
  gc();
  const grownMb = (process.memoryUsage().heapUsed - before) / 1048576;
  t.is(gis.accepted.size, 60_000);
  t.log(`heap grew ${grownMb.toFixed(0)} MB for 60 000 remembered order-ids`);
  // 60 000 entries need ≈ 15 MB; the 120 packets they came from ≈ 110 MB
  t.true(grownMb < 50, `heap grew ${grownMb.toFixed(0)} MB`);
});
