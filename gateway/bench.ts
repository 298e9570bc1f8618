/**
 * `gkh-bus bench` / `npm run bench`: throughput of the whole bus beside the ceilings of the broker and the
 * database measured in the same run on the same machine. The bus runs as its own process (`gkh-bus start`)
 * so that its peak RSS and CPU are its own; the simulator (signature checks on) runs in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, openSync, writeSync, closeSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpus, totalmem, loadavg } from 'node:os';
import amqp from 'amqplib';
import pg from 'pg';
import iconv from 'iconv-lite';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../connectors/log.ts';
import { dropDatabase, ensureDatabase } from '../connectors/store/db.ts';
import { deleteTopology, sleep } from '../connectors/amqp/broker.ts';
import { buildTopology } from '../connectors/amqp/topology.ts';
import { createProvider, loadCertificate, type ProviderName } from '../connectors/smev3/crypto/index.ts';
import { parsePayeesCsv } from '../transformers/classify/payees.ts';
import { SmevSimulator } from '../simulator/server.ts';
import { ensureTestKeys, loadSigner } from './keys.ts';

export const BENCH_HELP = `Usage: gkh-bus bench [--payments <N>] [--json] [--big-file <size>] [--provider js|openssl] [--keep] [--timeout <s>]

Generates UFEBS (PacketEPD, windows-1251) and CSV (layout A) files holding N payments (95 % reportable,
5 % skipped), starts the simulator (signature checks on) and a fresh bus process (own database
gkh_bench_<pid>, own queue prefix, own folders under var/bench/<run>/), drops the files into its inbox and
measures: parse rate, end-to-end rate from the first drop to SENT and to ACCEPTED, per-stage p50/p99 latency,
peak RSS of the bus process, CPU of bus, simulator, broker and database. Then, on the same broker and
database: the raw amqplib ceiling (publish with confirms + consume, one quorum queue, one small message per
payment) and a bulk insert of N payment rows; and the ratios bus / ceiling. Everything it made is removed
afterwards (--keep keeps the database and the run folder).
  --payments <N>     payments to generate (default 200000; 50k and 1M are accepted)
  --json             print one JSON document on stdout (progress goes to stderr)
  --big-file <size>  instead: one UFEBS file of about this size (e.g. 1GB, 300MB): parse rate and peak RSS of
                     the bus while it takes the file in (until the file is committed)
  --provider <p>     GOST provider of the bus and the simulator (default openssl when gost-engine is
                     installed, else js)
  --timeout <s>      give up after this many seconds (default 1800)`;

export interface BenchOptions {
  root: string;
  configFile: string;
  payments: number;
  json: boolean;
  bigFileBytes?: number;
  provider?: ProviderName;
  keep: boolean;
  timeoutMs: number;
}

const PAYEE = { inn: '9909630905', kpp: '990901001', bic: '044599202', account: '40702810502000012345', corr: '30101810945990000202', name: 'ООО "УК "Жилсервис-Пример""' };
const OTHER = { bic: '044599303', account: '40817810200031234567', corr: '30101810145990000303', name: 'Веселов Игорь Дмитриевич' };
const PER_FILE = 10_000;

/**
 * Node options of the bus service, as package.json's start script, the Dockerfile (NODE_OPTIONS) and
 * docker-compose run it (test/bench.test.ts keeps them equal): a 256 MB old-space cap makes V8 collect before the
 * process grows — the bus's live data is bounded (files streamed above inbox.streamAboveBytes, packets of 500) —
 * so RSS stays ≈ 200–370 MB (README "Performance").
 */
export const BUS_NODE_ARGS = ['--max-old-space-size=256'];

export function parseCount(v: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.trim());
  if (!m) throw Object.assign(new Error(`--payments ${v}: expected a number such as 200000, 50k or 1M`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  const n = Math.round(Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1000 : 1_000_000));
  if (n < 1) throw Object.assign(new Error(`--payments ${v}: at least 1`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  return n;
}

export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(v.trim());
  if (!m) throw Object.assign(new Error(`--big-file ${v}: expected a size such as 1GB or 300MB`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  const unit = (m[2] ?? 'B').toUpperCase();
  return Math.round(Number(m[1]) * ({ B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as Record<string, number>)[unit]!);
}

// ------------------------------------------------------------------------------------------ generation

let edNo = 1;
function ed101(i: number, reportable: boolean): string {
  const no = edNo++;
  const sum = 10_000 + (i % 900_000);
  const p = reportable ? PAYEE : OTHER;
  const payeeAttrs = reportable ? ` INN="${PAYEE.inn}" KPP="${PAYEE.kpp}"` : '';
  const purpose = reportable ? `Оплата ЖКУ за октябрь 2025 г. л/с ${100000 + (i % 900000)}. Без НДС` : 'Заработная плата за октябрь 2025 г. НДС не облагается';
  return `  <ED101 EDNo="${no}" EDDate="2025-11-05" EDAuthor="4599101000" Sum="${sum}" TransKind="01" Priority="5" ReceiptDate="2025-11-05" ChargeOffDate="2025-11-05" SystemCode="02">
    <AccDoc AccDocNo="${(no % 999) + 1}" AccDocDate="2025-11-05"/>
    <Payer PersonalAcc="40817810300000100001" INN="990909216175">
      <Name>Кузьмина Ольга Сергеевна</Name>
      <Bank BIC="044599101" CorrespAcc="30101810745990000101"/>
    </Payer>
    <Payee PersonalAcc="${p.account}"${payeeAttrs}>
      <Name>${p.name.replace(/"/g, '&quot;')}</Name>
      <Bank BIC="${p.bic}" CorrespAcc="${p.corr}"/>
    </Payee>
    <Purpose>${purpose}</Purpose>
  </ED101>
`;
}

/** One PacketEPD of `count` ED101 (every 20th skipped), windows-1251. Returns the bytes and the sum. */
export function ufebsPacket(count: number, start: number): { bytes: Buffer; reportable: number } {
  const parts: string[] = [];
  let sum = 0;
  let reportable = 0;
  for (let i = 0; i < count; i++) {
    const rep = (start + i) % 20 !== 19;
    if (rep) reportable++;
    const x = ed101(start + i, rep);
    sum += Number(/Sum="(\d+)"/.exec(x)![1]);
    parts.push(x);
  }
  const head = `<?xml version="1.0" encoding="windows-1251"?>\n<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDNo="${edNo++}" EDDate="2025-11-05" EDAuthor="4599101000" EDReceiver="4599000000" EDQuantity="${count}" Sum="${sum}" SystemCode="02">\n`;
  return { bytes: iconv.encode(head + parts.join('') + '</PacketEPD>\n', 'windows-1251'), reportable };
}

let opNo = 1;
/** A layout A registry of `count` rows, all to the registry payee (reportable), windows-1251. */
export function csvRegistry(count: number, reestr: number): Buffer {
  const lines = [`HEADER;REESTR:${String(reestr).padStart(4, '0')};DATE:05/11/2025;PAYEE_INN:${PAYEE.inn};PAYEE_KPP:${PAYEE.kpp};PAYEE_BIC:${PAYEE.bic};PAYEE_ACC:${PAYEE.account}`];
  let kop = 0;
  let fee = 0;
  for (let i = 0; i < count; i++) {
    const a = 10_000 + ((opNo * 7919) % 500_000);
    const f = Math.floor(a / 100);
    kop += a;
    fee += f;
    lines.push(`8611;8611/0123;05/11/2025;09-12-44;${(a / 100).toFixed(2)};${(f / 100).toFixed(2)};${String(opNo++).padStart(12, '0')};CLIENTNO:${String(1_000_000 + (i % 8_000_000)).padStart(7, '0')};method_pay:ONLINE`);
  }
  lines.push(`=${count};${(kop / 100).toFixed(2)};${(fee / 100).toFixed(2)}`);
  return iconv.encode(lines.join('\r\n') + '\r\n', 'windows-1251');
}

interface Generated { name: string; bytes: number; payments: number; reportable: number; path: string }

/** Writes the files into `dir` as they are generated (the drop is then a rename into the inbox). */
function generate(n: number, dir: string): Generated[] {
  const out: Generated[] = [];
  let made = 0;
  let k = 0;
  while (made < n) {
    const count = Math.min(PER_FILE, n - made);
    k++;
    // every fifth file is a CSV registry; the others are UFEBS packets
    if (k % 5 === 0) {
      const data = csvRegistry(count, k);
      const name = `bench_${String(k).padStart(4, '0')}.txt`;
      writeFileSync(join(dir, name), data);
      out.push({ name, bytes: data.length, payments: count, reportable: count, path: join(dir, name) });
    } else {
      const { bytes, reportable } = ufebsPacket(count, made);
      const name = `bench_${String(k).padStart(4, '0')}.xml`;
      writeFileSync(join(dir, name), bytes);
      out.push({ name, bytes: bytes.length, payments: count, reportable, path: join(dir, name) });
    }
    made += count;
  }
  return out;
}

/** Streams one PacketEPD of about `size` bytes to `path` (never holds it in memory). */
function generateBigFile(path: string, size: number): Generated {
  // the header carries EDQuantity and Sum, so the EDs are counted first (same generator, deterministic)
  const per = iconv.encode(ed101(0, true), 'windows-1251').length;
  edNo = 1;
  const count = Math.max(1, Math.floor(size / per));
  let sum = 0;
  for (let i = 0; i < count; i++) sum += 10_000 + (i % 900_000);
  const fd = openSync(path, 'w');
  let bytes = 0;
  let reportable = 0;
  const w = (s: string) => { const b = iconv.encode(s, 'windows-1251'); writeSync(fd, b); bytes += b.length; };
  w(`<?xml version="1.0" encoding="windows-1251"?>\n<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDNo="999999999" EDDate="2025-11-05" EDAuthor="4599101000" EDReceiver="4599000000" EDQuantity="${count}" Sum="${sum}" SystemCode="02">\n`);
  let buf: string[] = [];
  for (let i = 0; i < count; i++) {
    const rep = i % 20 !== 19;
    if (rep) reportable++;
    buf.push(ed101(i, rep));
    if (buf.length === 2000) { w(buf.join('')); buf = []; }
  }
  w(buf.join('') + '</PacketEPD>\n');
  closeSync(fd);
  return { name: 'big.xml', bytes, payments: count, reportable, path };
}

// ------------------------------------------------------------------------------------------ measuring

function procTicks(pid: number, withChildren = false): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // utime + stime (+ cutime + cstime: children already gone, e.g. PostgreSQL backends), in clock ticks
    return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
  } catch {
    return undefined;
  }
}

/** CPU ticks of every process of that name, by pid (children that exited included). */
function ticksByName(names: string[]): Map<number, number> {
  return new Map(pidsByName(names).map((p) => [p, procTicks(p, true) ?? 0]));
}

/** Ticks used since `before` by the processes of that name, those started since included. */
function ticksSince(names: string[], before: Map<number, number>): number {
  let t = 0;
  for (const [p, now] of ticksByName(names)) t += now - (before.get(p) ?? 0);
  return t;
}

function pidsByName(names: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${d}/comm`, 'utf8').trim())) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}


function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const TICK_MS = 10; // USER_HZ = 100 on Linux

function bar(frac: number, width = 30): string {
  const n = Math.max(0, Math.min(width, Math.round(frac * width)));
  return '█'.repeat(n) + '░'.repeat(width - n);
}

// ------------------------------------------------------------------------------------------ ceilings

/** Raw amqplib: publish with confirms (a window of 500 outstanding) and consume (ack each) through one quorum queue. */
async function brokerCeiling(url: string, queue: string, messages: number, bodyBytes: number): Promise<{ perSec: number; messages: number; ms: number }> {
  const conn = await amqp.connect(url);
  try {
    const setup = await conn.createChannel();
    await setup.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await setup.close();
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await sub.prefetch(1000);
    const body = Buffer.alloc(bodyBytes, 0x31);
    let got = 0;
    const started = performance.now();
    const done = new Promise<void>((r) => {
      void sub.consume(queue, (m) => {
        if (!m) return;
        sub.ack(m);
        if (++got === messages) r();
      });
    });
    let outstanding = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < messages; i++) {
      while (outstanding >= 500) await new Promise<void>((r) => (wake = r));
      outstanding++;
      pub.publish('', queue, body, { persistent: true, contentType: 'application/json', messageId: `c-${i}` }, (err) => {
        if (err) throw err;
        outstanding--;
        wake?.();
        wake = undefined;
      });
    }
    await pub.waitForConfirms();
    await done;
    const ms = performance.now() - started;
    await sub.close();
    await pub.close();
    const del = await conn.createChannel();
    await del.deleteQueue(queue);
    await del.close();
    return { perSec: Math.round(messages / (ms / 1000)), messages, ms: Math.round(ms) };
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Multi-row INSERT … SELECT FROM json_to_recordset of N rows shaped like payments, 5 000 rows a statement, one transaction. */
async function dbCeiling(dbUrl: string, n: number): Promise<{ perSec: number; rows: number; ms: number }> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    await c.query('DROP TABLE IF EXISTS bench_ceiling');
    await c.query('CREATE TABLE bench_ceiling (LIKE payments INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)');
    await c.query('ALTER TABLE bench_ceiling ALTER COLUMN file_id DROP NOT NULL');
    const started = performance.now();
    await c.query('BEGIN');
    for (let i = 0; i < n; i += 5000) {
      const rows = [];
      for (let j = i; j < Math.min(n, i + 5000); j++) {
        rows.push({
          source_key: `C:${j}`, ref: `ED101/${j}`, location: `PacketEPD/ED101[EDNo=${j}] (line ${j})`, kind: 'ED101', amount_kop: 10_000 + j,
          payment_date: '2025-11-05', doc_no: '101', purpose: 'Оплата ЖКУ за октябрь 2025 г. Без НДС',
          payer: { name: 'Кузьмина Ольга Сергеевна', account: '40817810300000100001', bic: '044599101' },
          payee: { inn: PAYEE.inn, kpp: PAYEE.kpp, account: PAYEE.account, bic: PAYEE.bic }, status: 'REPORTABLE', reason: 'payee in registry',
          rules: ['R'], recipient: { inn: PAYEE.inn, name: PAYEE.name, bic: PAYEE.bic, account: PAYEE.account }, order_id: String(j).padStart(32, '0'),
        });
      }
      await c.query(
        `INSERT INTO bench_ceiling (source_key, ref, location, kind, amount_kop, payment_date, doc_no, purpose, payer, payee, status, reason, rules, recipient, order_id)
         SELECT x.source_key, x.ref, x.location, x.kind, x.amount_kop, x.payment_date, x.doc_no, x.purpose, x.payer, x.payee, x.status, x.reason, x.rules, x.recipient, x.order_id
         FROM json_to_recordset($1::json) AS x(source_key text, ref text, location text, kind text, amount_kop bigint, payment_date date, doc_no text,
              purpose text, payer jsonb, payee jsonb, status text, reason text, rules jsonb, recipient jsonb, order_id text)`, [JSON.stringify(rows)]);
    }
    await c.query('COMMIT');
    const ms = performance.now() - started;
    await c.query('DROP TABLE bench_ceiling');
    return { perSec: Math.round(n / (ms / 1000)), rows: n, ms: Math.round(ms) };
  } finally {
    await c.end();
  }
}

// ------------------------------------------------------------------------------------------ the run

export interface BenchResult {
  mode: 'throughput' | 'big-file';
  payments: number;
  reportable: number;
  files: number;
  inputMb: number;
  provider: ProviderName;
  parsePaymentsPerSec: number;
  parseMbPerSec: number;
  e2eSentPerSec?: number;
  e2eAcceptedPerSec?: number;
  /** false when the run stopped (timeout, Ctrl-C) before every payment was final */
  complete?: boolean;
  sentSeconds?: number;
  acceptedSeconds?: number;
  stagesMs?: Record<string, { p50: number; p99: number }>;
  rawBrokerPerSec?: number;
  rawDbInsertPerSec?: number;
  ratioToBroker?: number;
  ratioToDbInsert?: number;
  peakRssMb: number;
  cpuSeconds: Record<string, number>;
  packets?: number;
  lost?: number;
  machine: { cpus: number; model: string; ramGb: number; loadBefore: number[]; loadAfter: number[]; node: string };
  runDir: string;
}

function freePort(): Promise<number> {
  return import('node:net').then(({ createServer }) => new Promise<number>((r, j) => {
    const s = createServer();
    s.once('error', j);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  }));
}

export async function runBench(o: BenchOptions): Promise<number> {
  const out = (s: string) => (o.json ? process.stderr : process.stdout).write(s + '\n');
  const progress = (s: string) => process.stderr.write(process.stderr.isTTY ? `\r${s}\x1b[K` : `${s}\n`);
  const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100);
  const provider: ProviderName = o.provider ?? (gostEngineAvailable() ? 'openssl' : 'js');
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(o.root, 'var/bench', runId);
  const dirs = { inbox: join(runDir, 'inbox'), processing: join(runDir, 'processing'), archive: join(runDir, 'archive'), quarantine: join(runDir, 'quarantine'), keys: join(runDir, 'keys'), gen: join(runDir, 'generated') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  ensureTestKeys(dirs.keys);
  const base = loadConfig(o.configFile).config;
  const dbUrl = new URL(base.database.url);
  dbUrl.pathname = `/gkh_bench_${process.pid}`;
  const prefix = `gkh-bench-${process.pid}`;
  const topology = buildTopology({ prefix, deliveryLimit: base.broker.deliveryLimit, retryDelays: [2000, 10000, 30000] });

  // 1. input
  out(`gkh-bus bench: ${o.bigFileBytes ? `one UFEBS file of ${(o.bigFileBytes / 1024 ** 2).toFixed(0)} MB` : `${o.payments} payments`}, provider ${provider}, run folder ${runDir}`);
  let files: Generated[];
  const tg = performance.now();
  if (o.bigFileBytes) files = [generateBigFile(join(dirs.gen, 'big.xml'), o.bigFileBytes)];
  else {
    edNo = 1;
    opNo = 1;
    files = generate(o.payments, dirs.gen);
  }
  const total = files.reduce((a, f) => a + f.payments, 0);
  const reportable = files.reduce((a, f) => a + f.reportable, 0);
  const inputBytes = files.reduce((a, f) => a + f.bytes, 0);
  out(`generated ${files.length} file(s), ${(inputBytes / 1024 ** 2).toFixed(1)} MB, ${total} payments (${reportable} reportable) in ${((performance.now() - tg) / 1000).toFixed(1)} s`);

  // 2. simulator (in this process) and the bus (its own process)
  const log = createLogger({ level: 'error' });
  const gost = createProvider(provider);
  const payeesFile = join(o.root, 'examples/payees.csv');
  const sim = new SmevSimulator({
    port: 0, provider: gost, smev: loadSigner(dirs.keys, 'smev', gost), gis: loadSigner(dirs.keys, 'gis', gost),
    clients: [{ cert: loadCertificate(readFileSync(join(dirs.keys, 'bank.cert.pem'))), mnemonic: 'BANK01' }],
    payees: parsePayeesCsv(readFileSync(payeesFile), payeesFile).records, latencyMs: 20, log,
  });
  const simPort = await sim.start();
  const adminPort = await freePort();
  const cfg = {
    database: { url: dbUrl.toString(), pool: 10 },
    broker: { url: base.broker.url, prefix, deliveryLimit: base.broker.deliveryLimit, retryDelays: ['2s', '10s', '30s'], prefetch: base.broker.prefetch },
    inbox: { path: dirs.inbox, processing: dirs.processing, archive: dirs.archive, quarantine: dirs.quarantine, stableMs: '200ms', usePolling: false, pollIntervalMs: '1s', maxFileBytes: Math.max(base.inbox.maxFileBytes, 2 * 1024 ** 3) },
    csvLayouts: resolve(o.root, 'config/csv-layouts.yaml'),
    payees: { file: payeesFile },
    selection: { mode: 'RI' },
    batch: { maxItems: 500, maxWaitMs: '500ms' },
    smev: {
      endpoint: `http://127.0.0.1:${simPort}/smev`, version: '1.2', key: join(dirs.keys, 'bank.key.pem'), cert: join(dirs.keys, 'bank.cert.pem'),
      trust: [join(dirs.keys, 'smev.cert.pem')], provider, timeoutMs: '60s', pollMinMs: '50ms', pollMaxMs: '500ms', concurrency: base.smev.concurrency, pollers: base.smev.pollers,
    },
    gis: base.gis,
    admin: { host: '127.0.0.1', port: adminPort, token: 'bench-admin-token' },
    log: { level: 'info' },
  };
  const cfgFile = join(runDir, 'bus.yaml');
  writeFileSync(cfgFile, toYaml(cfg));
  await ensureDatabase(dbUrl.toString());

  const busLog = join(runDir, 'bus.log');
  const logStream = createWriteStream(busLog);
  let child: ChildProcess | undefined;
  let code = 0;
  const timers: NodeJS.Timeout[] = [];
  // Ctrl-C / SIGTERM: stop measuring, report what was reached, and clean up as after a normal run
  let aborted = false;
  const onSignal = () => { aborted = true; };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // a pool, so that a restart of PostgreSQL during a long run costs a few polls, not the run
  const db = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
  db.on('error', () => {});
  try {
    // the bus runs as `npm start` runs it (BUS_NODE_ARGS: the heap cap); BENCH_BUS_NODE_ARGS replaces them, e.g.
    // "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it, or "" to measure without the cap
    const nodeArgs = (process.env.BENCH_BUS_NODE_ARGS ?? BUS_NODE_ARGS.join(' ')).split(/\s+/).filter(Boolean);
    child = spawn(process.execPath, [...nodeArgs, join(o.root, 'bin/gkh-bus.js'), 'start', '--config', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } });
    child.stderr!.pipe(logStream);
    const exited = new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${adminPort}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the bus did not start; see ${busLog}`);
      await sleep(200);
    }
    out(`bus process ${child.pid} started (database ${dbUrl.pathname.slice(1)}, queues ${prefix}.*, log ${busLog})`);

    const busPid = child.pid!;
    const cpu0 = { bus: procTicks(busPid) ?? 0, broker: ticksByName(['beam.smp']), db: ticksByName(['postgres']), self: process.cpuUsage() };
    let peakRss = 0;
    timers.push(setInterval(() => { peakRss = Math.max(peakRss, statusKb(busPid, 'VmHWM') ?? 0); }, 200));

    // 3. drop (rename from the generation folder on the same file system); the clock starts at the first drop
    const t0 = Date.now();
    const drops: { name: string; at: number }[] = [];
    for (const f of files) {
      renameSync(f.path, join(dirs.inbox, f.name)); // written beside, then renamed in: the inbox contract
      drops.push({ name: f.name, at: Date.now() });
    }
    const hardEnd = t0 + o.timeoutMs;
    let tSent: number | undefined;
    let tAccepted: number | undefined;
    let tFiles: number | undefined;
    let last = { sent: 0, accepted: 0, at: t0 };
    let invalid = 0;
    let invalidAt = 0;
    for (;;) {
      const polled = await db.query<{ files: number; rejected: number; received: number; sent: number; accepted: number; final: number }>(
        `SELECT (SELECT count(*) FROM files WHERE status IN ('ACCEPTED','DUPLICATE','REJECTED'))::int AS files,
                (SELECT count(*) FROM files WHERE status = 'REJECTED')::int AS rejected,
                (SELECT coalesce(sum(payments_added), 0) FROM files)::int AS received,
                -- from the packets (N / 500 rows), not a scan of every payment four times a second, which at 1 M
                -- payments cost the database most of a core and made the run look worse than linear
                coalesce(sum(items) FILTER (WHERE status IN ('SENT','RESPONDED','SMEV_REJECTED')), 0)::int AS sent,
                coalesce(sum(accepted) FILTER (WHERE status = 'RESPONDED'), 0)::int AS accepted,
                coalesce(sum(coalesce(accepted, 0) + coalesce(rejected, 0)) FILTER (WHERE status IN ('RESPONDED','SMEV_REJECTED')), 0)::int AS final
           FROM packets`).catch((e: Error) => e);
      // payments taken out of their packet as INVALID are final too; counted from the payments (through the partial
      // index of unpacked ones, which holds every payment not packed yet: up to N of them while the intake is ahead)
      // only once the packets account for nearly everything, and then every 5 s (else every 60 s)
      const near = !(polled instanceof Error) && polled.rows[0]!.final + invalid >= reportable * 0.99;
      if (!(polled instanceof Error) && Date.now() - invalidAt > (near ? 5000 : 60_000)) {
        invalidAt = Date.now();
        invalid = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE packet_id IS NULL AND order_id IS NOT NULL AND status = 'INVALID'`)
          .then((r) => r.rows[0]!.n, () => invalid);
      }
      if (!(polled instanceof Error)) polled.rows[0]!.final += invalid;
      if (polled instanceof Error) {
        progress(`  database unavailable (${polled.message}); retrying`);
        if (Date.now() > hardEnd || aborted) break;
        await sleep(1000);
        continue;
      }
      const [s] = polled.rows;
      const now = Date.now();
      last = { sent: s.sent, accepted: s.accepted, at: now };
      if (s.files >= files.length && !tFiles) tFiles = now;
      if (s.sent >= reportable && !tSent) tSent = now;
      if (s.final >= reportable && !tAccepted) tAccepted = now;
      const el = (now - t0) / 1000;
      if (o.bigFileBytes) {
        progress(`  ${bar(s.files / files.length)} file ${s.files}/${files.length} · ${el.toFixed(0)} s · bus RSS ${Math.round((statusKb(busPid, 'VmRSS') ?? 0) / 1024)} MB`);
        if (tFiles) break;
      } else {
        progress(`  ${bar(s.final / reportable)} files ${s.files}/${files.length} · received ${s.received} · sent ${s.sent}/${reportable} · accepted ${s.accepted} · ${el.toFixed(0)} s · ${Math.round(s.sent / Math.max(el, 0.001))}/s`);
        if (tAccepted) break;
      }
      if (s.rejected) throw new Error(`a generated file was rejected: ${(await db.query('SELECT name, reason FROM files WHERE status = $1 LIMIT 1', ['REJECTED'])).rows[0]?.reason}`);
      if (now > hardEnd || aborted) {
        code = aborted ? 130 : 1;
        out(`\n${aborted ? 'interrupted' : 'timed out'} after ${el.toFixed(0)} s: the rates below are those reached so far`);
        break;
      }
      await sleep(250);
    }
    process.stderr.write('\n');
    peakRss = Math.max(peakRss, statusKb(busPid, 'VmHWM') ?? 0);
    const self = process.cpuUsage(cpu0.self);
    const cpuSeconds = {
      bus: ((procTicks(busPid) ?? 0) - cpu0.bus) * TICK_MS / 1000,
      simulator: Math.round((self.user + self.system) / 1e4) / 100,
      broker: ticksSince(['beam.smp'], cpu0.broker) * TICK_MS / 1000,
      database: ticksSince(['postgres'], cpu0.db) * TICK_MS / 1000,
    };
    for (const t of timers) clearInterval(t);

    // 4. stop the bus (graceful) before the ceilings, so that they have the machine to themselves
    child.kill('SIGTERM');
    // (a plain sleep here kept the benchmark alive for a minute after the bus had exited)
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => { grace = setTimeout(r, 60_000); })]);
    clearTimeout(grace);
    await new Promise((r) => logStream.end(r));

    // parse rate from the bus's own per-file figures
    let parseMs = 0;
    let parsedBytes = 0;
    let parsed = 0;
    for (const line of readFileSync(busLog, 'utf8').split('\n')) {
      if (!line.includes('"file accepted"')) continue;
      const r = JSON.parse(line) as { parseMs?: number; bytes?: number; parsed?: number };
      parseMs += r.parseMs ?? 0;
      parsedBytes += r.bytes ?? 0;
      parsed += r.parsed ?? 0;
    }
    const result: BenchResult = {
      mode: o.bigFileBytes ? 'big-file' : 'throughput',
      payments: total, reportable, files: files.length, inputMb: Math.round(inputBytes / 1024 ** 2 * 10) / 10, provider,
      parsePaymentsPerSec: parseMs ? Math.round(parsed / (parseMs / 1000)) : 0,
      parseMbPerSec: parseMs ? Math.round(parsedBytes / 1024 ** 2 / (parseMs / 1000) * 10) / 10 : 0,
      peakRssMb: Math.round(peakRss / 1024),
      cpuSeconds,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', ramGb: Math.round(totalmem() / 1024 ** 3), loadBefore, loadAfter: loadavg().map((x) => Math.round(x * 100) / 100), node: process.version },
      runDir,
    };
    if (!o.bigFileBytes) {
      result.sentSeconds = tSent ? (tSent - t0) / 1000 : undefined;
      result.acceptedSeconds = tAccepted ? (tAccepted - t0) / 1000 : undefined;
      // an unfinished run (timeout, Ctrl-C) reports the rate reached so far
      result.complete = !!tAccepted;
      result.e2eSentPerSec = Math.round(tSent ? reportable / ((tSent - t0) / 1000) : last.sent / ((last.at - t0) / 1000));
      result.e2eAcceptedPerSec = Math.round(tAccepted ? reportable / ((tAccepted - t0) / 1000) : last.accepted / ((last.at - t0) / 1000));
      result.stagesMs = await stages(db, drops);
      const { rows: [c] } = await db.query<{ packets: number; lost: number }>(
        `SELECT (SELECT count(*) FROM packets)::int AS packets,
                ($1::int - (SELECT count(*) FROM payments WHERE status <> 'SKIPPED'))::int AS lost`, [reportable]);
      result.packets = c.packets;
      result.lost = c.lost;

      // 5. ceilings on the same broker and database (also after a timeout; not after Ctrl-C)
      if (!aborted) {
        progress('  measuring the broker ceiling …');
        const body = JSON.stringify({ paymentId: 1_000_000 }).length;
        const b = await brokerCeiling(base.broker.url, `${prefix}.ceiling`, Math.min(o.payments, 100_000), body);
        progress('  measuring the database ceiling …');
        const d = await dbCeiling(dbUrl.toString(), o.payments);
        process.stderr.write('\n');
        result.rawBrokerPerSec = b.perSec;
        result.rawDbInsertPerSec = d.perSec;
        result.ratioToBroker = Math.round((result.e2eSentPerSec / b.perSec) * 100) / 100;
        result.ratioToDbInsert = Math.round((result.e2eSentPerSec / d.perSec) * 100) / 100;
      }
    }
    if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else printResult(result, out);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const t of timers) clearInterval(t);
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await db.end().catch(() => {});
    await sim.stop();
    await deleteTopology(base.broker.url, topology).catch((e) => out(`could not delete bench queues: ${(e as Error).message}`));
    if (!o.keep) {
      await dropDatabase(dbUrl.toString()).catch((e) => out(`could not drop bench database: ${(e as Error).message}`));
      rmSync(runDir, { recursive: true, force: true });
    }
  }
  return code;
}

async function stages(pool: pg.Pool, drops: { name: string; at: number }[]): Promise<Record<string, { p50: number; p99: number }>> {
  const db = await pool.connect(); // one connection: the temporary table lives in it
  try {
    return await stagesOn(db, drops);
  } finally {
    db.release();
  }
}

async function stagesOn(db: pg.PoolClient, drops: { name: string; at: number }[]): Promise<Record<string, { p50: number; p99: number }>> {
  await db.query('CREATE TEMP TABLE bench_drops (name text PRIMARY KEY, dropped_at timestamptz)');
  await db.query(`INSERT INTO bench_drops SELECT * FROM json_to_recordset($1::json) AS x(name text, dropped_at timestamptz)`,
    [JSON.stringify(drops.map((d) => ({ name: d.name, dropped_at: new Date(d.at).toISOString() })))]);
  const q = async (sql: string) => {
    const { rows: [r] } = await db.query<{ p50: number | null; p99: number | null }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM (${sql}) s`);
    return { p50: Math.round(r.p50 ?? 0), p99: Math.round(r.p99 ?? 0) };
  };
  const ev = (a: string, b: string) =>
    `SELECT extract(epoch FROM (y.at - x.at)) * 1000 AS ms FROM payment_events x JOIN payment_events y ON y.payment_id = x.payment_id AND y.status = '${b}' WHERE x.status = '${a}'`;
  return {
    'drop→committed (file)': await q(`SELECT extract(epoch FROM (f.finished_at - d.dropped_at)) * 1000 AS ms FROM files f JOIN bench_drops d ON d.name = f.name`),
    'committed→packed': await q(ev('RECEIVED', 'PACKED')),
    'packed→sent': await q(ev('PACKED', 'SENT')),
    'sent→accepted': await q(ev('SENT', 'ACCEPTED')),
    'drop→sent': await q(`SELECT extract(epoch FROM (e.at - d.dropped_at)) * 1000 AS ms FROM payment_events e JOIN payments p ON p.id = e.payment_id
                          JOIN files f ON f.id = p.file_id JOIN bench_drops d ON d.name = f.name WHERE e.status = 'SENT'`),
  };
}

function printResult(r: BenchResult, out: (s: string) => void): void {
  const row = (k: string, v: string) => out(`  ${k.padEnd(34)} ${v}`);
  out('');
  row('input', `${r.files} file(s), ${r.inputMb} MB, ${r.payments} payments, ${r.reportable} reportable`);
  row('parse', `${r.parsePaymentsPerSec} payments/s, ${r.parseMbPerSec} MB/s`);
  if (r.mode === 'throughput') {
    const secs = (v?: number) => (v === undefined ? 'not all reached: rate so far' : `${v.toFixed(1)} s`);
    row('end to end: drop → SENT', `${r.e2eSentPerSec} payments/s (${secs(r.sentSeconds)})`);
    row('end to end: drop → ACCEPTED', `${r.e2eAcceptedPerSec} payments/s (${secs(r.acceptedSeconds)})`);
    row('ceiling: raw broker (1 quorum queue)', `${r.rawBrokerPerSec} messages/s   bus/ceiling ${r.ratioToBroker}`);
    row('ceiling: bulk insert of N rows', `${r.rawDbInsertPerSec} rows/s   bus/ceiling ${r.ratioToDbInsert}`);
    row('packets', `${r.packets}; payments lost ${r.lost}`);
    out('');
    out(`  ${'stage latency, ms'.padEnd(34)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`);
    for (const [k, v] of Object.entries(r.stagesMs ?? {})) out(`  ${k.padEnd(34)} ${String(v.p50).padStart(8)} ${String(v.p99).padStart(8)}`);
    out('');
  }
  row('peak RSS of the bus process', `${r.peakRssMb} MB`);
  row('CPU seconds', Object.entries(r.cpuSeconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ') + ' (broker and database: all their processes, shared)');
  row('machine', `${r.machine.cpus} × ${r.machine.model}, ${r.machine.ramGb} GB RAM, load ${r.machine.loadBefore.join(' ')} → ${r.machine.loadAfter.join(' ')}, node ${r.machine.node}`);
}

function gostEngineAvailable(): boolean {
  try {
    createProvider('openssl').digest(Buffer.from('x'));
    return true;
  } catch {
    return false;
  }
}

void existsSync;
