import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { startHarness, waitFor, SAMPLES, type Harness } from './helpers/harness.ts';
import { chunkIds, paymentIdsOf } from '../routes/batcher.ts';

test('payment.reportable bodies: chunks of ids, and the older single-id shape', (t) => {
  t.deepEqual(paymentIdsOf({ paymentIds: [3, 1, 2] }), [3, 1, 2]);
  t.deepEqual(paymentIdsOf({ paymentId: 7 }), [7]);
  t.deepEqual(paymentIdsOf({ paymentId: '7' }), [7]);
  for (const bad of [{}, null, { paymentIds: [] }, { paymentIds: [1, 'x'] }, { paymentIds: [0] }, { paymentId: -1 }, { paymentIds: 'x' }]) {
    t.is(paymentIdsOf(bad), undefined, JSON.stringify(bad));
  }
  const ids = Array.from({ length: 1201 }, (_, i) => i + 1);
  const chunks = chunkIds(ids);
  t.deepEqual(chunks.map((c) => c.length), [500, 500, 201]);
  t.deepEqual(chunks.flat(), ids);
  t.deepEqual(chunkIds([]), []);
});

let h: Harness;
test.before(async () => { h = await startHarness('chunks', { 'batch.maxItems': 3 }); });
test.after.always(async () => { await h?.close(); });

test.serial('the batcher packs chunk messages and in-flight single-id messages alike; every payment is packed once', async (t) => {
  // intake without announcing (as after a crash between commit and publish), then announce by hand
  const out = await h.bus.intake.processBytes(readFileSync(join(SAMPLES, 'ufebs/PacketEPD_20251105_cp1251.xml')), 'p.xml');
  const ids = out.reportableIds;
  t.is(ids.length, 5);
  const { workExchange } = h.bus.broker.topology;
  await h.bus.broker.publish(workExchange, 'payment.reportable', { paymentId: ids[0] }, { messageId: `payment-${ids[0]}` });
  await h.bus.broker.publish(workExchange, 'payment.reportable', { paymentIds: ids.slice(1) }, { messageId: 'chunk-1' });
  // a redelivered chunk (same ids again) adds nothing
  await h.bus.broker.publish(workExchange, 'payment.reportable', { paymentIds: ids }, { messageId: 'chunk-again' });
  const rows = await waitFor(async () => {
    const r = await h.bus.store.query<{ id: number; status: string; packet_id: number | null }>(
      'SELECT id, status, packet_id FROM payments WHERE id = ANY($1::bigint[]) ORDER BY id', [ids]);
    return r.every((x) => x.status === 'ACCEPTED') ? r : undefined;
  }, 90_000, 'all accepted');
  const packets = new Set(rows.map((r) => r.packet_id));
  t.is(packets.size, 2, 'maxItems 3: 5 payments in 2 packets');
  const [ev] = await h.bus.store.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM payment_events WHERE status = 'PACKED' AND payment_id = ANY($1::bigint[])`, [ids]);
  t.is(ev.n, 5, 'each payment packed exactly once');
  for (const p of h.sim.gis.accepted.values()) t.is(p.times, 1);
});

test.serial('a payment.reportable body without valid ids is parked with the reason', async (t) => {
  const { workExchange } = h.bus.broker.topology;
  await h.bus.broker.publish(workExchange, 'payment.reportable', { paymentIds: [1, 'x'] }, { messageId: 'bad-chunk' });
  const parked = h.bus.broker.topology.routes.payments.parkedQueue;
  const conn = await amqp.connect(h.config.broker.url);
  try {
    const ch = await conn.createChannel();
    const msg = await waitFor(async () => (await ch.get(parked, { noAck: true })) || undefined, 10_000, 'parked message');
    t.is(msg.properties.messageId, 'bad-chunk');
    t.regex(String(msg.properties.headers?.['x-reason']), /no valid paymentId/);
    await ch.close();
  } finally {
    await conn.close();
  }
});
