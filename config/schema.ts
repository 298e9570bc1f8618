import { z } from 'zod';

const duration = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+(ms|s|m|h)$/, 'a duration like 500ms, 10s, 5m or 1h')])
  .transform((v) => (typeof v === 'number' ? v : parseDuration(v)));

export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(v);
  if (!m) throw new Error(`not a duration: ${v}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
}

const regex = z.string().refine((s) => {
  try { new RegExp(s, 'u'); return true; } catch { return false; }
}, 'a valid regular expression');

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
    prefetch: z.number().int().min(1).max(10_000).default(1000),
  }).strict(),
  inbox: z.object({
    path: z.string(),
    processing: z.string(),
    archive: z.string(),
    quarantine: z.string(),
    /** a file is complete when its size and mtime have not changed for this long */
    stableMs: duration.default(1000),
    usePolling: z.boolean().default(false),
    pollIntervalMs: duration.default(1000),
    maxFileBytes: z.number().int().positive().default(200 * 1024 * 1024),
  }).strict(),
  /** YAML file (relative to this config file) with the CSV layout profiles */
  csvLayouts: z.string().default('csv-layouts.yaml'),
  payees: z.object({
    /** CSV registry of payees (layout of shared/data/samples/payees.csv), loaded at start */
    file: z.string().optional(),
  }).strict().default({}),
  selection: z.object({
    mode: z.enum(['R', 'I', 'RI']).default('RI'),
    mapLatinLookalikes: z.boolean().default(false),
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
    timeoutMs: duration.default(180_000),
    testMessage: z.boolean().default(false),
    pollMinMs: duration.default(1000),
    pollMaxMs: duration.default(30_000),
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
