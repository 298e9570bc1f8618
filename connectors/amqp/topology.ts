/**
 * The whole RabbitMQ topology as one description (rascal style), derived from the config:
 * work exchange → quorum work queue per route; retry tiers as TTL queues that return through the
 * default exchange to exactly one work queue; a parked queue per route; an alternate exchange for
 * unroutable messages. `validateTopology` enforces the rules of shared/reference/messaging.md §3.4.
 */
export interface ExchangeSpec { name: string; type: 'topic' | 'direct' | 'fanout'; arguments?: Record<string, unknown> }
export interface QueueSpec { name: string; arguments: Record<string, unknown>; role: 'work' | 'retry' | 'parked' | 'unrouted'; route?: string }
export interface BindingSpec { exchange: string; queue: string; key: string }
export interface RouteSpec {
  name: string; queue: string; bindingKey: string;
  /** the retry queue of attempt n at index n-1 (a queue may repeat) */
  retryQueues: string[];
  parkedQueue: string;
}
export interface Topology {
  prefix: string;
  exchanges: ExchangeSpec[];
  queues: QueueSpec[];
  bindings: BindingSpec[];
  routes: Record<string, RouteSpec>;
  workExchange: string;
  retryExchange: string;
  parkExchange: string;
}

export const ROUTES = {
  /** payments ready to be packed: body { paymentIds: number[] } (≤ 500 ids; the older { paymentId } is still accepted) */
  payments: 'payment.reportable',
  /** a packet ready to be sent to SMEV: body { packetId } */
  packets: 'packet.ready',
} as const;
export type RouteName = keyof typeof ROUTES;

export function tierName(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export function buildTopology(opts: { prefix: string; deliveryLimit: number; retryDelays: number[] }): Topology {
  const p = opts.prefix;
  const work = `${p}.work`, retry = `${p}.retry`, park = `${p}.park`, unrouted = `${p}.unrouted`;
  const t: Topology = {
    prefix: p,
    workExchange: work,
    retryExchange: retry,
    parkExchange: park,
    exchanges: [
      { name: unrouted, type: 'fanout' },
      { name: work, type: 'topic', arguments: { 'alternate-exchange': unrouted } },
      { name: retry, type: 'direct' },
      { name: park, type: 'direct' },
    ],
    queues: [{ name: `${p}.unrouted`, role: 'unrouted', arguments: { 'x-queue-type': 'quorum' } }],
    bindings: [{ exchange: unrouted, queue: `${p}.unrouted`, key: '' }],
    routes: {},
  };
  for (const [route, key] of Object.entries(ROUTES)) {
    const q = `${p}.${route}`;
    const parked = `${q}.parked`;
    t.queues.push({
      name: q, role: 'work', route,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': opts.deliveryLimit,
        'x-dead-letter-exchange': park,
        'x-dead-letter-routing-key': parked,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    t.bindings.push({ exchange: work, queue: q, key });
    // one TTL queue per distinct delay; the attempt → tier list may name a queue several times (10s, 1m, 30m, 30m …)
    const retryQueues: string[] = [];
    for (const ms of opts.retryDelays) {
      const rq = `${q}.retry.${tierName(ms)}`;
      retryQueues.push(rq);
      if (t.queues.some((x) => x.name === rq)) continue;
      t.queues.push({
        name: rq, role: 'retry', route,
        arguments: {
          'x-queue-type': 'quorum',
          'x-message-ttl': ms,
          'x-delivery-limit': opts.deliveryLimit,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': q,
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        },
      });
      t.bindings.push({ exchange: retry, queue: rq, key: rq });
    }
    // parked: terminal, no consumer; emptied only by an operator's replay
    t.queues.push({ name: parked, role: 'parked', route, arguments: { 'x-queue-type': 'quorum' } });
    t.bindings.push({ exchange: park, queue: parked, key: parked });
    t.routes[route] = { name: route, queue: q, bindingKey: key, retryQueues, parkedQueue: parked };
  }
  validateTopology(t);
  return t;
}

/** Throws with every broken rule listed. */
export function validateTopology(t: Topology): void {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const q of t.queues) {
    if (names.has(q.name)) problems.push(`queue ${q.name} declared twice`);
    names.add(q.name);
    if (q.arguments['x-queue-type'] !== 'quorum') problems.push(`queue ${q.name}: must be a quorum queue`);
    if (q.role === 'work' || q.role === 'retry') {
      if (typeof q.arguments['x-delivery-limit'] !== 'number') problems.push(`queue ${q.name}: x-delivery-limit must be set explicitly`);
      if (q.arguments['x-dead-letter-exchange'] === undefined) problems.push(`queue ${q.name}: needs a dead-letter exchange`);
    }
    // a dead-letter path must never lead back into the queue it starts from (RabbitMQ PR #8799)
    const dlx = q.arguments['x-dead-letter-exchange'];
    const dlk = q.arguments['x-dead-letter-routing-key'];
    if (dlx === '' && dlk === q.name) problems.push(`queue ${q.name}: dead-letters into itself`);
    if (typeof dlx === 'string' && dlx !== '') {
      const targets = t.bindings.filter((b) => b.exchange === dlx && (b.key === dlk || b.key === '')).map((b) => b.queue);
      if (targets.includes(q.name)) problems.push(`queue ${q.name}: dead-letters into itself through ${dlx}`);
      if (targets.length === 0) problems.push(`queue ${q.name}: dead-letter path ${dlx}/${String(dlk)} reaches no queue`);
    }
  }
  const tierKeys = t.bindings.filter((b) => b.exchange === t.retryExchange).map((b) => b.key);
  if (new Set(tierKeys).size !== tierKeys.length) problems.push('retry routing keys must be unique per route and tier');
  if (problems.length) throw new Error('RabbitMQ topology is not valid:\n  - ' + problems.join('\n  - '));
}
