import { z } from 'zod';
import { parseCron } from '../transformers/cron.ts';

const duration = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration like 500ms, 10s, 5m, 1h or 2d')])
  .transform((v) => (typeof v === 'number' ? v : parseDuration(v)));

export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v);
  if (!m) throw new Error(`not a duration: ${v}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : m[2] === 'h' ? n * 3_600_000 : n * 86_400_000;
}

const regex = z.string().refine((s) => {
  try { new RegExp(s, 'u'); return true; } catch { return false; }
}, 'a valid regular expression');

/** upper bound of the attempts of one message (the retry plan is a list of that length) */
export const MAX_RETRY_ATTEMPTS = 10_000;

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID');

export const configSchema = z.object({
  database: z.object({
    url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
    pool: z.number().int().min(1).max(100).default(10),
  }).strict(),
  broker: z.object({
    url: z.string().regex(/^amqps?:\/\//, 'an amqp:// URL'),
    /** every exchange and queue name starts with this prefix */
    prefix: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, "_", "-", "." only').default('gkh'),
    deliveryLimit: z.number().int().min(1).max(100).default(5),
    retryDelays: z.array(duration).min(1).default(['10s', '60s', '10m'] as never),
    /**
     * the end of life of a retried message, counted from its first failure: when set, the last retry tier
     * repeats until then (then the message is parked); when absent, the message is parked after the last tier
     */
    retryUntil: duration.optional(),
    /** payment.reportable messages (≤ 500 ids each) the batcher holds unacknowledged */
    prefetch: z.number().int().min(1).max(10_000).default(32),
  }).strict().superRefine((b, ctx) => {
    if (b.retryUntil === undefined) return;
    const sum = b.retryDelays.reduce((a, d) => a + d, 0);
    if (b.retryUntil < sum) {
      ctx.addIssue({ code: 'custom', path: ['retryUntil'], message: `must be at least the sum of retryDelays (${sum} ms)` });
      return;
    }
    const last = b.retryDelays[b.retryDelays.length - 1];
    if (last <= 0 || b.retryDelays.length + Math.ceil((b.retryUntil - sum) / last) > MAX_RETRY_ATTEMPTS) {
      ctx.addIssue({ code: 'custom', path: ['retryUntil'], message: `repeating the last tier (${last} ms) until then makes more than ${MAX_RETRY_ATTEMPTS} attempts; use a longer last tier` });
    }
  }),
  inbox: z.object({
    path: z.string(),
    processing: z.string(),
    archive: z.string(),
    quarantine: z.string(),
    /**
     * when a file is complete: `stable` = its size and mtime have not changed for stableMs; `done-marker` = a file
     * `<name><doneSuffix>` appears beside it (removed after the claim); `rename` = the writer writes under a
     * temporary name (tempPattern) and renames it when done, so any other name is complete
     */
    readiness: z.enum(['stable', 'done-marker', 'rename']).default('stable'),
    doneSuffix: z.string().regex(/^\.[A-Za-z0-9_.-]+$/, 'a suffix like .done').default('.done'),
    /** names being written (never read): a regular expression on the file name */
    tempPattern: regex.default('\\.(tmp|part|partial)$|~$'),
    /** a file is complete when its size and mtime have not changed for this long */
    stableMs: duration.default(1000),
    usePolling: z.boolean().default(false),
    pollIntervalMs: duration.default(1000),
    /** largest file read whole into memory (CSV registries, single EDs, SigEnvelopes) */
    maxFileBytes: z.number().int().positive().default(200 * 1024 * 1024),
    /** UFEBS PacketEPD files above this size are taken in streaming (two passes, bounded memory) */
    streamAboveBytes: z.number().int().positive().default(32 * 1024 * 1024),
    /** largest PacketEPD file taken in streaming */
    maxStreamedBytes: z.number().int().positive().default(8 * 1024 ** 3),
  }).strict().superRefine((i, ctx) => {
    for (const k of ['processing', 'archive', 'quarantine'] as const) {
      if (i[k].replace(/\/+$/, '') === i.path.replace(/\/+$/, '')) ctx.addIssue({ code: 'custom', path: [k], message: 'must be another folder than inbox.path' });
    }
  }),
  /** YAML file (relative to this config file) with the CSV layout profiles */
  csvLayouts: z.string().default('csv-layouts.yaml'),
  payees: z.object({
    /** CSV registry of payees (layout of shared/data/samples/payees.csv), loaded at start */
    file: z.string().optional(),
    /** registry download from ГИС through SMEV (ВС 95796) */
    refresh: z.object({
      /** 5-field cron expression (local time of the bus, or UTC with utc: true), or "off" */
      schedule: z.string().refine((s) => {
        if (s === 'off') return true;
        try { parseCron(s); return true; } catch { return false; }
      }, 'a 5-field cron expression such as "0 3 * * *", or "off"').default('0 3 * * *'),
      utc: z.boolean().default(false),
      /** organisations per page requested from ГИС */
      pageSize: z.number().int().min(1).max(10_000).default(1000),
      /** a refresh not finished after this long is failed (the current version stays) */
      timeoutMs: duration.default(1_800_000),
    }).strict().default({}),
    /** folder for the АБС: after each new version, payees_v<id>.csv is written here (temporary name, then rename) */
    outbox: z.string().optional(),
    outboxEncoding: z.enum(['utf-8', 'windows-1251']).default('windows-1251'),
  }).strict().default({}),
  selection: z.object({
    mode: z.enum(['R', 'I', 'RI']).default('RI'),
    mapLatinLookalikes: z.boolean().default(false),
    /** no (BIC, account) match: accept a registry payee with the same INN (+KPP when the payment has one) */
    innFallback: z.boolean().default(false),
    /** regex sources (matched on the upper-cased purpose) of markers that announce a ЖКУ identifier */
    markers: z.array(regex).optional(),
    /** regex sources of markers of a лицевой счёт */
    accountMarkers: z.array(regex).optional(),
  }).strict().default({}),
  batch: z.object({
    maxItems: z.number().int().min(1).max(500).default(500),
    maxWaitMs: duration.default(2000),
  }).strict().default({}),
  smev: z.object({
    endpoint: z.string().url(),
    version: z.enum(['1.1', '1.2', '1.3']).default('1.2'),
    key: z.string(),
    cert: z.string(),
    /** SMEV certificates whose signatures on replies are trusted */
    trust: z.array(z.string()).min(1),
    provider: z.enum(['js', 'openssl']).default('js'),
    /** packets being built, signed and sent at the same time (the sender's prefetch) */
    concurrency: z.number().int().min(1).max(64).default(8),
    timeoutMs: duration.default(180_000),
    testMessage: z.boolean().default(false),
    pollMinMs: duration.default(1000),
    pollMaxMs: duration.default(30_000),
    /** GetResponse loops at the same time: each takes one response, applies it in its own transaction, acknowledges it */
    pollers: z.number().int().min(1).max(16).default(2),
  }).strict(),
  gis: z.object({
    informationSystemId: uuid,
    organizationId: uuid,
    /** BIC of the reporting bank, the first part of every order-id */
    bankBic: z.string().regex(/^\d{9}$/, '9 digits'),
  }).strict(),
  admin: z.object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    token: z.string().min(8, 'at least 8 characters'),
  }).strict(),
  log: z.object({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  }).strict().default({}),
}).strict();

export type BusConfig = z.infer<typeof configSchema>;
