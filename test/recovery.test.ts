/**
 * Recovery bugs found by the chaos suite (test/chaos/), each pinned down with the input that showed it.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Channel, ConfirmChannel } from 'amqplib';
import { startHarness, waitFor, type Harness } from './helpers/harness.ts';

let h: Harness;
test.before(async () => { h = await startHarness('recovery', { 'broker.retryDelays': [300, 300, 300] }); });
test.after.always(async () => { await h?.close(); });

const HEADER = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';
let n = 0;
function drop(): string {
  const op = `R-${process.pid}-${++n}`;
  writeFileSync(join(h.config.inbox.path, `${op}.csv`),
    HEADER + `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;"Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025";52,${String(n).padStart(2, '0')};0,00\r\n`);
  return op;
}
const payment = (op: string) => waitFor(async () => (await h.bus.store.query<{ id: number; status: string; packet_id: number | null; order_id: string }>(
  'SELECT id, status, packet_id, order_id FROM payments WHERE source_key LIKE $1', [`%:${op}`]))[0], 20_000, `payment ${op}`);
const packet = async (id: number) => (await h.bus.store.query<{ status: string }>('SELECT status FROM packets WHERE id = $1', [id]))[0]!;

// chaos scenario smev-disconnect-after-accept: SMEV took the packet but the reply was lost; before the retry got
// its MessageIsAlreadySent, the poller had applied ГИС's answer (RESPONDED). Marking the packet SENT then left
// it SENT for ever (the poller polled for an answer that had already come).
test.serial('MessageIsAlreadySent after the answer was applied leaves the packet RESPONDED', async (t) => {
  // the order must not depend on how fast the machine is: ГИС answers 1.5 s after the first (lost-reply) attempt,
  // well after the retry (300 ms tier) has read the packet as BUILT and while SMEV holds that retry for 4 s.
  // (With a fast XSD engine the answer used to be applied before the retry started, which then sent nothing.)
  h.sim.setLatency(1500);
  t.teardown(() => h.sim.setLatency(20));
  h.sim.inject({ operation: 'SendRequest', http: 'disconnect-after-commit', times: 1 });
  h.sim.inject({ operation: 'SendRequest', http: { delayMs: 4000 }, times: 1 });
  const faults = h.sim.stats.faults;
  const op = drop();
  await waitFor(async () => h.sim.stats.responsesQueued > 0 || undefined, 20_000, 'ГИС answer queued');
  // the retry is now held by SMEV; apply the answer meanwhile
  await waitFor(async () => (await h.bus.poller.pollOnce()) || (await payment(op)).status === 'ACCEPTED', 10_000, 'answer applied');
  const p = await payment(op);
  t.is(p.status, 'ACCEPTED');
  t.is((await packet(p.packet_id!)).status, 'RESPONDED');
  await waitFor(async () => h.sim.stats.faults > faults || undefined, 15_000, 'MessageIsAlreadySent');
  await new Promise((r) => setTimeout(r, 500));
  t.is((await packet(p.packet_id!)).status, 'RESPONDED');
  t.is(h.sim.gis.accepted.get(p.order_id)?.times, 1);
});

// a channel-level close (the connection stays up) used to leave the consumer dead and every publish failing
test.serial('a closed consumer channel and a closed publish channel are opened again', async (t) => {
  const b = h.bus.broker as unknown as { consumers: { queue: string; channel?: Channel }[]; pub?: ConfirmChannel; reconnects: number };
  const before = b.reconnects;
  for (const c of b.consumers) await c.channel!.close();
  await b.pub!.close();
  const op = drop();
  const p = await waitFor(async () => { const x = await payment(op); return x.status === 'ACCEPTED' ? x : undefined; }, 30_000, 'ACCEPTED');
  t.is(p.status, 'ACCEPTED');
  t.is(b.reconnects, before, 'the connection itself was not lost');
  t.true(b.consumers.every((c) => !!c.channel));
});

// chaos scenario kill9-mid-batch: after a crash, a packet rebuilt or retried before (attempts > 0) and left BUILT
// without its message was never announced again; fresh left-overs waited for the 60 s stale time
test.serial('start-up sweep announces every BUILT packet at once; the periodic sweep only untried stale ones', async (t) => {
  const { Sweeper } = await import('../routes/sweeper.ts');
  const { v1 } = await import('uuid');
  const [pk] = await h.bus.store.query<{ id: number }>(
    `INSERT INTO packets (message_id, status, form, schema_version, items, attempts) VALUES ($1, 'BUILT', 'full', 'payments-1.0.0', 0, 1) RETURNING id`, [v1()]);
  const announced: number[] = [];
  const sweeper = new Sweeper({ store: h.bus.store, log: h.log, staleMs: 60_000, publishPayments: async () => {}, publishPacket: async (id) => { announced.push(id); } });
  await sweeper.sweep(0);
  t.false(announced.includes(pk!.id), 'a tried packet is left to its retry tier while running');
  await sweeper.sweep(0, true);
  t.true(announced.includes(pk!.id), 'announced at start-up');
  await h.bus.store.query(`UPDATE packets SET status = 'PARKED' WHERE id = $1`, [pk!.id]);
});

// broker.publish added a 'return' listener per publish: more than 10 publishes at once (sender, batcher, replay)
// printed MaxListenersExceededWarning; a returned message is now matched through one listener per channel.
// (An unroutable publish is retried for about 80 s before it fails, too long for this suite.)
test.serial('many publishes at once add no listener per publish', async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  t.teardown(() => { process.off('warning', onWarning); });
  const b = h.bus.broker;
  const unrouted = b.topology.queues.find((q) => q.role === 'unrouted')!.name;
  await Promise.all(Array.from({ length: 40 }, (_, i) => b.publish('', unrouted, { probe: i }, { messageId: `probe-${i}` })));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
});

// with a backlog (intake ahead of sending) every sweep re-announced and touched up to 50 000 REPORTABLE payments that
// were only waiting in the queue: a load that grew with the backlog (a 1 M-payment benchmark ran worse than linear)
test.serial('the periodic sweep leaves REPORTABLE payments alone while payment messages are queued; start-up does not', async (t) => {
  const { Sweeper } = await import('../routes/sweeper.ts');
  const op = drop();
  const p = await payment(op);
  await waitFor(async () => (await payment(op)).status === 'ACCEPTED' || undefined, 30_000, 'ACCEPTED');
  // make it look stalled: REPORTABLE, unpacked, not touched for an hour
  await h.bus.store.query(`UPDATE payments SET status = 'REPORTABLE', packet_id = NULL, updated_at = now() - interval '1 hour' WHERE id = $1`, [p.id]);
  let queued = 3;
  const announced: number[] = [];
  const sweeper = new Sweeper({ store: h.bus.store, log: h.log, staleMs: 60_000, paymentsQueued: async () => queued,
    publishPayments: async (ids) => { announced.push(...ids); }, publishPacket: async () => {} });
  await sweeper.sweep();
  t.false(announced.includes(p.id), 'messages are queued: the payment is taken to be on its way');
  await sweeper.sweep(60_000, true);
  t.true(announced.includes(p.id), 'at start-up every left-over is announced');
  announced.length = 0;
  await h.bus.store.query(`UPDATE payments SET updated_at = now() - interval '1 hour' WHERE id = $1`, [p.id]);
  queued = 0;
  await sweeper.sweep();
  t.true(announced.includes(p.id), 'nothing queued: a stalled payment is announced again');
  await h.bus.store.query(`UPDATE payments SET status = 'ACCEPTED' WHERE id = $1`, [p.id]);
});
