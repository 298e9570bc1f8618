/**
 * The client's answer to each SMEV fault, driven through the whole bus (file → RabbitMQ → SMEV simulator):
 * the table "How the client handles each SMEV fault" in README.md is this file.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, waitFor, type Harness } from './helpers/harness.ts';

let h: Harness;
test.before(async () => { h = await startHarness('faults', { 'broker.retryDelays': [300, 300, 300] }); });
test.after.always(async () => { await h?.close(); });

const HEADER = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';
let n = 0;
/** drops a one-payment CSV (layout C) with a fresh operation number; returns the payment's source key suffix */
function drop(): string {
  const op = `F-${process.pid}-${++n}`;
  writeFileSync(join(h.config.inbox.path, `${op}.csv`),
    HEADER + `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;"Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025";41,${String(n).padStart(2, '0')};0,00\r\n`);
  return op;
}
async function payment(op: string) {
  return waitFor(async () => (await h.bus.store.query<{ id: number; status: string; packet_id: number | null; order_id: string; error_code: string | null }>(
    `SELECT id, status, packet_id, order_id, error_code FROM payments WHERE source_key LIKE $1`, [`%:${op}`]))[0], 20_000, `payment ${op}`);
}
async function final(op: string, statuses = ['ACCEPTED', 'REJECTED']) {
  return waitFor(async () => {
    const p = await payment(op);
    return statuses.includes(p.status) ? p : undefined;
  }, 30_000, `final status of ${op}`);
}
async function packetOf(op: string) {
  return waitFor(async () => {
    const p = await payment(op);
    return p.packet_id && (await h.bus.store.query<{ id: number; status: string; attempts: number; last_error: string | null; message_id: string; previous_message_ids: string[] }>(
      'SELECT id, status, attempts, last_error, message_id, previous_message_ids FROM packets WHERE id = $1', [p.packet_id]))[0];
  }, 20_000, 'packet');
}

for (const fault of ['SMEVFailure', 'DestinationOverflow'] as const) {
  test.serial(`${fault} on SendRequest: retried with the same MessageID, then ACCEPTED once`, async (t) => {
    h.sim.inject({ operation: 'SendRequest', fault, times: 2 });
    const op = drop();
    const p = await final(op);
    t.is(p.status, 'ACCEPTED');
    const pk = await packetOf(op);
    t.is(pk.attempts, 3);
    t.deepEqual(pk.previous_message_ids, []);
    t.is(h.sim.gis.accepted.get(p.order_id)?.times, 1);
  });
}

test.serial('HTTP 503 and a dropped connection: transport failures are retried', async (t) => {
  h.sim.inject({ operation: 'SendRequest', http: 503, times: 1 });
  h.sim.inject({ operation: 'SendRequest', http: 'disconnect', times: 1 });
  const op = drop();
  t.is((await final(op)).status, 'ACCEPTED');
  t.is((await packetOf(op)).attempts, 3);
});

test.serial('connection closed after SMEV took the message: the resend gets MessageIsAlreadySent, counted as delivered; ГИС sees it once', async (t) => {
  h.sim.inject({ operation: 'SendRequest', http: 'disconnect-after-commit', times: 1 });
  const op = drop();
  const p = await final(op);
  t.is(p.status, 'ACCEPTED');
  t.is(h.sim.gis.accepted.get(p.order_id)?.times, 1);
  const [m] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM smev_messages WHERE packet_id = $1 AND error LIKE 'MessageIsAlreadySent%'`, [p.packet_id]);
  t.is(m.n, 1);
});

test.serial('StaleMessageId: the packet is rebuilt with a new MessageID and a new signature', async (t) => {
  h.sim.inject({ operation: 'SendRequest', fault: 'StaleMessageId', times: 1 });
  const op = drop();
  t.is((await final(op)).status, 'ACCEPTED');
  const pk = await packetOf(op);
  t.is(pk.previous_message_ids.length, 1);
  t.not(pk.previous_message_ids[0], pk.message_id);
});

test.serial('a permanent fault (AccessDenied) parks the packet with the reason; nothing is sent again', async (t) => {
  h.sim.inject({ operation: 'SendRequest', fault: 'AccessDenied', times: 1 });
  const op = drop();
  const pk = await waitFor(async () => { const x = await packetOf(op); return x.status === 'PARKED' ? x : undefined; }, 20_000, 'parked');
  t.regex(pk.last_error!, /AccessDenied/);
  t.is((await payment(op)).status, 'PACKED');
  // the packet row says PARKED before the broker has moved the message (after the attempt is recorded): wait for it
  const parked = await waitFor(async () => (await h.bus.broker.queueDepths())[`${h.config.broker.prefix}.packets.parked`].messages, 20_000, 'parked message');
  t.true(parked >= 1);
});

test.serial('retries exhausted: parked with the attempt count', async (t) => {
  h.sim.inject({ operation: 'SendRequest', fault: 'SMEVFailure', times: 4 });
  const op = drop();
  const pk = await waitFor(async () => { const x = await packetOf(op); return x.status === 'PARKED' ? x : undefined; }, 20_000, 'parked');
  t.regex(pk.last_error!, /retries exhausted after 4 attempts: SMEVFailure/);
});

test.serial('ГИС answers EXP001000 for the packet: rebuilt (new MessageID), not resent as it was; accepted once', async (t) => {
  h.sim.injectGis({ packetError: { code: 'EXP001000', description: 'Произошла ошибка при передаче данных. Попробуйте осуществить передачу данных повторно' }, times: 1 });
  const op = drop();
  const p = await final(op);
  t.is(p.status, 'ACCEPTED');
  const pk = await packetOf(op);
  t.is(pk.previous_message_ids.length, 1);
  t.is(h.sim.gis.accepted.get(p.order_id)?.times, 1);
});

test.serial('a reply whose SMEV signature is made by an untrusted key is stored, not used, acknowledged accepted="false"', async (t) => {
  h.sim.inject({ operation: 'GetResponse', untrustedSignature: true, times: 1 });
  const op = drop();
  // the response is delivered again after the simulator's redelivery time and then accepted
  const [before] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM smev_inbound WHERE outcome LIKE 'rejected:%'`);
  await waitFor(async () => {
    const [r] = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM smev_inbound WHERE outcome LIKE 'rejected:%'`);
    return r.n > before.n;
  }, 20_000, 'rejected reply');
  const [row] = await h.bus.store.query<{ error: string; status: string }>(`SELECT error, status FROM smev_messages WHERE status = 'rejected' ORDER BY id DESC LIMIT 1`);
  t.regex(row.error, /SMEV signature: CertificateIsNotFound/);
  t.is((await payment(op)).status === 'ACCEPTED', false, 'nothing from the untrusted reply was applied');
});
