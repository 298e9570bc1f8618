/**
 * The retry policy (pure): which tier a failed attempt goes to, and when a message is parked instead.
 * `delays` are the tiers in order (10s, 1m, 10m, 30m); with `untilMs` the last tier repeats until the
 * message's end of life, counted from its first failure (or from its last replay), then it is parked.
 */
export interface RetryPolicy {
  delays: number[];
  untilMs?: number;
}

export interface RetryDecision {
  /** the delay of the tier to go to, or undefined: park */
  delayMs?: number;
  /** why not, when parked */
  exhausted?: string;
}

/** When the retry clock of a message started: its last replay, else its first failure, else now. */
export function retrySince(headers: Record<string, unknown>, now: number): number {
  const replay = Date.parse(String(headers['x-retry-since'] ?? ''));
  if (Number.isFinite(replay)) return replay;
  const h = headers['x-history'];
  const first = Array.isArray(h) && h.length ? Date.parse(String((h[0] as { at?: unknown })?.at ?? '')) : NaN;
  return Number.isFinite(first) ? first : now;
}

/** The decision after attempt `attempt` (1-based) failed transiently. */
export function nextRetry(p: RetryPolicy, attempt: number, sinceMs: number, now: number): RetryDecision {
  const n = p.delays.length;
  const within = (d: number) => p.untilMs === undefined || now - sinceMs + d <= p.untilMs;
  if (attempt <= n) {
    const d = p.delays[attempt - 1];
    if (within(d)) return { delayMs: d };
    return { exhausted: `end of life (broker.retryUntil ${p.untilMs} ms) reached` };
  }
  if (p.untilMs === undefined) return { exhausted: `no retry tier left (broker.retryDelays has ${n})` };
  const last = p.delays[n - 1];
  if (within(last)) return { delayMs: last };
  return { exhausted: `end of life (broker.retryUntil ${p.untilMs} ms) reached` };
}

/** The longest attempt → tier list the policy can need (each retry waits at least its tier's delay). */
export function maxRetries(p: RetryPolicy): number {
  const n = p.delays.length;
  if (p.untilMs === undefined) return n;
  const sum = p.delays.reduce((a, d) => a + d, 0);
  const last = p.delays[n - 1];
  return n + Math.max(0, Math.ceil((p.untilMs - sum) / Math.max(1, last))) + 1;
}

/** Expands a route's per-tier queue list (one per configured delay) to one queue per attempt. */
export function expandTiers(tierQueues: string[], p: RetryPolicy): string[] {
  const out = [...tierQueues];
  const max = maxRetries(p);
  while (out.length < max) out.push(tierQueues[tierQueues.length - 1]);
  return out;
}
