import test from 'ava';
import amqp from 'amqplib';
import { buildTopology, validateTopology } from '../connectors/amqp/topology.ts';
import { declare, deleteTopology } from '../connectors/amqp/broker.ts';
import { uniqueName } from './helpers/harness.ts';

const URL = 'amqp://guest:guest@127.0.0.1:5672';

test('every work and retry queue is a quorum queue with a delivery limit and a dead-letter path that never loops back', (t) => {
  const topo = buildTopology({ prefix: 'p', deliveryLimit: 5, retryDelays: [10_000, 60_000, 600_000] });
  const work = topo.queues.find((q) => q.name === 'p.payments')!;
  t.like(work.arguments, { 'x-queue-type': 'quorum', 'x-delivery-limit': 5, 'x-dead-letter-exchange': 'p.park', 'x-dead-letter-routing-key': 'p.payments.parked' });
  const tier = topo.queues.find((q) => q.name === 'p.payments.retry.1m')!;
  t.like(tier.arguments, { 'x-message-ttl': 60_000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'p.payments' });
  t.deepEqual(topo.routes.packets.retryQueues, ['p.packets.retry.10s', 'p.packets.retry.1m', 'p.packets.retry.10m']);
});

test('the validator refuses a self-loop and a missing delivery limit', (t) => {
  const topo = buildTopology({ prefix: 'p', deliveryLimit: 5, retryDelays: [1000] });
  const q = topo.queues.find((x) => x.name === 'p.payments.retry.1s')!;
  q.arguments['x-dead-letter-routing-key'] = 'p.payments.retry.1s';
  delete topo.queues.find((x) => x.name === 'p.packets')!.arguments['x-delivery-limit'];
  const e = t.throws(() => validateTopology(topo))!;
  t.regex(e.message, /p\.payments\.retry\.1s: dead-letters into itself/);
  t.regex(e.message, /p\.packets: x-delivery-limit must be set explicitly/);
});

test('declared on the real broker; a queue that exists with other arguments is named in the error', async (t) => {
  const prefix = uniqueName('t-topo');
  const topo = buildTopology({ prefix, deliveryLimit: 5, retryDelays: [1000] });
  t.teardown(() => deleteTopology(URL, topo));
  const conn = await amqp.connect(URL);
  try {
    await declare(conn, topo);
    await declare(conn, topo); // idempotent
    const other = buildTopology({ prefix, deliveryLimit: 7, retryDelays: [1000] });
    const e = await t.throwsAsync(() => declare(conn, other));
    t.regex(e!.message, new RegExp(`queue ${prefix}\\.payments: exists with other arguments`));
  } finally {
    await conn.close().catch(() => {});
  }
});
