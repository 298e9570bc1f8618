/** The retry policy (pure): tiers in order, the last one repeating until broker.retryUntil, then park. */
import test from 'ava';
import { expandTiers, maxRetries, nextRetry, retrySince } from '../connectors/amqp/retry.ts';

const S = 1000, M = 60_000;
const tiers = [10 * S, M, 10 * M, 30 * M];

test('without retryUntil: each tier once, then park', (t) => {
  const p = { delays: tiers };
  t.deepEqual([1, 2, 3, 4].map((a) => nextRetry(p, a, 0, 0).delayMs), tiers);
  t.is(nextRetry(p, 5, 0, 0).delayMs, undefined);
  t.regex(nextRetry(p, 5, 0, 0).exhausted!, /no retry tier left/);
  t.is(maxRetries(p), 4);
});

test('with retryUntil: the last tier repeats until the end of life, counted from the first failure', (t) => {
  const p = { delays: tiers, untilMs: 24 * 60 * M };
  const since = Date.parse('2026-01-01T00:00:00Z');
  t.is(nextRetry(p, 5, since, since + 2 * 60 * M).delayMs, 30 * M);
  t.is(nextRetry(p, 40, since, since + 23 * 60 * M).delayMs, 30 * M);
  // 23 h 31 min in: another 30 min would pass the 24 h
  const late = nextRetry(p, 41, since, since + 23 * 60 * M + 31 * M);
  t.is(late.delayMs, undefined);
  t.regex(late.exhausted!, /end of life/);
  // an early tier is also refused when it would pass the end of life
  t.is(nextRetry({ delays: [10 * M], untilMs: 15 * M }, 1, since, since + 6 * M).delayMs, undefined);
});

test('the attempt → tier list covers every attempt the policy can make', (t) => {
  const p = { delays: [200, 300], untilMs: 5000 };
  const list = expandTiers(['q.retry.200ms', 'q.retry.300ms'], p);
  // 200 + 300 + n × 300 ≤ 5000 → at most 2 + 15 retries (+1 spare)
  t.is(list.length, maxRetries(p));
  t.true(list.length >= 17);
  t.deepEqual(list.slice(0, 3), ['q.retry.200ms', 'q.retry.300ms', 'q.retry.300ms']);
  t.true(list.slice(1).every((q) => q === 'q.retry.300ms'));
});

test('the retry clock starts at the last replay, else at the first failure in x-history', (t) => {
  t.is(retrySince({ 'x-history': [{ at: '2026-01-01T00:00:00.000Z' }, { at: '2026-01-01T01:00:00.000Z' }] }, 5), Date.parse('2026-01-01T00:00:00.000Z'));
  t.is(retrySince({ 'x-retry-since': '2026-02-01T00:00:00.000Z', 'x-history': [{ at: '2026-01-01T00:00:00.000Z' }] }, 5), Date.parse('2026-02-01T00:00:00.000Z'));
  t.is(retrySince({}, 42), 42);
});
