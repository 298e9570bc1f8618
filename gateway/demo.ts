import { copyFileSync, createWriteStream, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { createLogger, type Logger } from '../connectors/log.ts';
import { dropDatabase } from '../connectors/store/db.ts';
import { deleteTopology, sleep } from '../connectors/amqp/broker.ts';
import { createProvider, loadCertificate } from '../connectors/smev3/crypto/index.ts';
import { parsePayeesCsv } from '../transformers/classify/payees.ts';
import { SmevSimulator } from '../simulator/server.ts';
import { startBus, type BusHandle } from './bus.ts';
import { ensureTestKeys, loadSigner } from './keys.ts';
import { readFileSync } from 'node:fs';

export const DEMO_HELP = `Usage: gkh-bus demo [--files <dir>] [--payees <csv>] [--json] [--keep] [--timeout <s>]

Starts the SMEV 3 + ГИС ЖКХ simulator and the bus (fresh database and queue prefix for the run), drops
every file directly in <dir> (default examples/inbox) into the watched inbox, shows progress, waits until
every payment has a final status, prints a per-file and per-status summary, shuts down and exits 0.
  --files <dir>     your own UFEBS/CSV files (any extension)
  --payees <csv>    payee registry (layout of examples/payees.csv) instead of the configured one
  --json            print the summary as one JSON document on stdout (progress goes to stderr)
  --keep            keep the run's database (gkh_demo_<pid>) for inspection
  --timeout <s>     give up after this many seconds (default 180)
  --config <file>   base configuration (default config/bus.yaml)
Work folders (inbox, archive, quarantine, logs) are kept in var/demo/<run>/.`;

export interface DemoOptions {
  root: string;
  configFile: string;
  files?: string;
  payees?: string;
  json: boolean;
  keep: boolean;
  timeoutMs?: number;
}

export interface DemoSummary {
  files: { name: string; status: 'done' | 'rejected'; payments: number; reportable: number; skipped: number; recordsRejected: number; reason?: string }[];
  payments: { received: number; reportable: number; skipped: number; invalid: number; sent: number; accepted: number; rejected: number };
  byStatus: { status: string; payments: number; amountKop: number }[];
  packets: { sent: number; accepted: number; rejected: number };
  durationMs: number;
  runDir: string;
}

const IGNORED_NAME = /(^\.|\.tmp$|\.part$|\.partial$|~$|\.error\.txt$|\.problems\.txt$)/i;

export async function runDemo(o: DemoOptions): Promise<number> {
  const started = Date.now();
  const out = (s: string) => (o.json ? process.stderr : process.stdout).write(s + '\n');
  const srcDir = resolve(o.files ?? join(o.root, 'examples/inbox'));
  let entries: string[];
  try {
    entries = readdirSync(srcDir).filter((n) => statSync(join(srcDir, n)).isFile()).sort();
  } catch (e) {
    throw new Error(`--files ${srcDir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'folder not found' : (e as Error).message}`);
  }
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(o.root, 'var/demo', runId);
  const dirs = { inbox: join(runDir, 'inbox'), processing: join(runDir, 'processing'), archive: join(runDir, 'archive'), quarantine: join(runDir, 'quarantine'), keys: join(runDir, 'keys') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const logFile = join(runDir, 'bus.log');
  const logStream = createWriteStream(logFile);
  const log: Logger = createLogger({ level: 'info', write: (l) => logStream.write(l + '\n') });

  ensureTestKeys(dirs.keys);
  const provider = createProvider('js');
  const base = loadConfig(o.configFile).config;
  const payeesFile = resolve(o.payees ?? base.payees.file ?? join(o.root, 'examples/payees.csv'));
  const dbUrl = new URL(base.database.url);
  dbUrl.pathname = `/gkh_demo_${process.pid}`;
  const prefix = `gkh-demo-${process.pid}`;

  const payees = parsePayeesCsv(readFileSync(payeesFile), payeesFile);
  const sim = new SmevSimulator({
    port: 0, provider, smev: loadSigner(dirs.keys, 'smev', provider), gis: loadSigner(dirs.keys, 'gis', provider),
    clients: [{ cert: loadCertificate(readFileSync(join(dirs.keys, 'bank.cert.pem'))), mnemonic: 'BANK01' }],
    payees: payees.records, latencyMs: 100, log: log.child({ component: 'simulator' }),
  });
  const simPort = await sim.start();
  out(`SMEV 3 + ГИС ЖКХ simulator on http://127.0.0.1:${simPort}/smev`);

  const { config } = loadConfig(o.configFile, process.env, {
    'database.url': dbUrl.toString(), 'broker.prefix': prefix,
    'inbox.path': dirs.inbox, 'inbox.processing': dirs.processing, 'inbox.archive': dirs.archive, 'inbox.quarantine': dirs.quarantine,
    'inbox.stableMs': 300, 'payees.file': payeesFile, 'batch.maxWaitMs': 500, 'payees.refresh.schedule': 'off',
    'smev.endpoint': `http://127.0.0.1:${simPort}/smev`, 'smev.key': join(dirs.keys, 'bank.key.pem'), 'smev.cert': join(dirs.keys, 'bank.cert.pem'),
    'smev.trust': [join(dirs.keys, 'smev.cert.pem')], 'smev.pollMinMs': 100, 'smev.pollMaxMs': 1000, 'smev.timeoutMs': 30_000,
    'admin.port': 0, 'broker.retryDelays': [2000, 5000, 10000], 'broker.retryUntil': undefined,
  });
  let bus: BusHandle | undefined;
  let code = 0;
  try {
    bus = await startBus(config, { log, payeesFile });
    out(`bus started (database ${dbUrl.pathname.slice(1)}, queues ${prefix}.*, admin http://127.0.0.1:${bus.adminPort}, log ${logFile})`);
    const names = new Map<string, string>(); // inbox name → original name
    bus.onFile((f) => out(`  ${f.status === 'REJECTED' ? '✗' : '✓'} ${names.get(f.name) ?? f.name}: ${f.status === 'REJECTED' ? `rejected — ${f.reason}` :
      f.status === 'DUPLICATE' ? `duplicate — ${f.reason}` : `${f.payments} payments (${f.reportable} reportable, ${f.skipped} skipped${f.recordsRejected ? `, ${f.recordsRejected} records rejected` : ''})`}`));
    out(`dropping ${entries.length} file(s) from ${srcDir} into ${dirs.inbox}`);
    for (const n of entries) {
      const target = IGNORED_NAME.test(n) ? `_${n.replace(/^\./, '')}.file` : n;
      names.set(target, n);
      copyFileSync(join(srcDir, n), join(dirs.inbox, `${target}.tmp`));
      renameSync(join(dirs.inbox, `${target}.tmp`), join(dirs.inbox, target)); // write, then rename: the inbox contract
    }
    const deadline = Date.now() + (o.timeoutMs ?? 180_000);
    let last = '';
    for (;;) {
      const done = bus.inbox!.outcomes.length >= entries.length;
      const [s] = await bus.store.query<Record<string, number>>(
        `SELECT count(*)::int AS total, count(*) FILTER (WHERE status IN ('REPORTABLE','PACKED','SENT'))::int AS open,
                count(*) FILTER (WHERE status = 'ACCEPTED')::int AS accepted, count(*) FILTER (WHERE status = 'REJECTED')::int AS rejected,
                count(*) FILTER (WHERE status IN ('SENT'))::int AS sent FROM payments`);
      const [pk] = await bus.store.query<{ parked: number; open: number }>(
        `SELECT count(*) FILTER (WHERE status = 'PARKED')::int AS parked, count(*) FILTER (WHERE status IN ('BUILT','SENT'))::int AS open FROM packets`);
      const line = `  files ${bus.inbox!.outcomes.length}/${entries.length} · payments ${s.total}: ${s.open} in flight (${s.sent} sent), ${s.accepted} accepted, ${s.rejected} rejected${pk.parked ? ` · ${pk.parked} packet(s) parked` : ''}`;
      if (line !== last) out(line);
      last = line;
      // parked packets need an operator; for the demo their payments count as final (shown as PACKED)
      const [stuck] = await bus.store.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM payments p LEFT JOIN packets k ON k.id = p.packet_id
          WHERE p.status IN ('REPORTABLE','PACKED','SENT') AND (k.status IS NULL OR k.status <> 'PARKED')`);
      if (done && stuck.n === 0) break;
      if (Date.now() > deadline) {
        out(`timed out after ${Math.round((Date.now() - started) / 1000)} s with ${stuck.n} payment(s) not final; see ${logFile}`);
        code = 1;
        break;
      }
      await sleep(250);
    }
    const summary = await summarize(bus, names, entries, started, runDir);
    if (o.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
    else printTable(summary, out);
  } finally {
    await bus?.stop().catch((e) => out(`bus stop failed: ${(e as Error).message}`));
    await sim.stop();
    await deleteTopology(config.broker.url, (await import('../connectors/amqp/topology.ts')).buildTopology({ prefix, deliveryLimit: config.broker.deliveryLimit, retryDelays: config.broker.retryDelays }))
      .catch((e) => out(`could not delete demo queues: ${(e as Error).message}`));
    if (!o.keep) await dropDatabase(dbUrl.toString()).catch((e) => out(`could not drop demo database: ${(e as Error).message}`));
    await new Promise((r) => logStream.end(r));
  }
  return code;
}

async function summarize(bus: BusHandle, names: Map<string, string>, entries: string[], started: number, runDir: string): Promise<DemoSummary> {
  const rows = await bus.store.query<{ name: string; status: string; reason: string | null; payments_added: number; reportable: number; skipped: number; records_rejected: number }>(
    'SELECT name, status, reason, payments_added, reportable, skipped, records_rejected FROM files ORDER BY id');
  const byName = new Map(rows.map((r) => [names.get(r.name) ?? r.name, r]));
  const files = entries.map((n) => {
    const r = byName.get(n);
    if (!r) return { name: n, status: 'rejected' as const, payments: 0, reportable: 0, skipped: 0, recordsRejected: 0, reason: 'not processed before the timeout' };
    return {
      name: n, status: r.status === 'REJECTED' ? 'rejected' as const : 'done' as const, payments: r.payments_added, reportable: r.reportable,
      skipped: r.skipped, recordsRejected: r.records_rejected, ...(r.reason ? { reason: r.reason } : {}),
    };
  });
  const st = await bus.store.query<{ status: string; n: number; kop: number }>(
    `SELECT status, count(*)::int AS n, coalesce(sum(amount_kop), 0)::bigint AS kop FROM payments GROUP BY status ORDER BY status`);
  const n = (s: string[]) => st.filter((r) => s.includes(r.status)).reduce((a, r) => a + r.n, 0);
  const pk = await bus.store.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM packets GROUP BY status');
  const p = (s: string[]) => pk.filter((r) => s.includes(r.status)).reduce((a, r) => a + r.n, 0);
  return {
    files,
    payments: {
      received: n(['SKIPPED', 'REPORTABLE', 'PACKED', 'SENT', 'ACCEPTED', 'REJECTED', 'INVALID']),
      reportable: n(['REPORTABLE', 'PACKED', 'SENT', 'ACCEPTED', 'REJECTED', 'INVALID']),
      skipped: n(['SKIPPED']),
      invalid: n(['INVALID']),
      sent: n(['SENT', 'ACCEPTED', 'REJECTED']),
      accepted: n(['ACCEPTED']),
      rejected: n(['REJECTED']),
    },
    byStatus: st.map((r) => ({ status: r.status, payments: r.n, amountKop: r.kop })),
    packets: { sent: p(['SENT', 'RESPONDED', 'SMEV_REJECTED']), accepted: p(['RESPONDED']), rejected: p(['SMEV_REJECTED', 'PARKED']) },
    durationMs: Date.now() - started,
    runDir,
  };
}

function printTable(s: DemoSummary, out: (l: string) => void): void {
  const w = Math.max(4, ...s.files.map((f) => f.name.length));
  out('');
  out(`${'File'.padEnd(w)}  Status    Payments  Reportable  Skipped  Reason`);
  for (const f of s.files) {
    out(`${f.name.padEnd(w)}  ${f.status.padEnd(8)}  ${String(f.payments).padStart(8)}  ${String(f.reportable).padStart(10)}  ${String(f.skipped).padStart(7)}  ${f.reason ?? (f.recordsRejected ? `${f.recordsRejected} record(s) rejected` : '')}`);
  }
  out('');
  out(`${'Payment status'.padEnd(16)}  Payments  Amount, RUB`);
  for (const r of s.byStatus) out(`${r.status.padEnd(16)}  ${String(r.payments).padStart(8)}  ${(r.amountKop / 100).toFixed(2).padStart(12)}`);
  out('');
  const p = s.payments;
  out(`payments: received ${p.received}, reportable ${p.reportable}${p.invalid ? ` (${p.invalid} invalid, not sent)` : ''}, skipped ${p.skipped}, sent ${p.sent}, accepted ${p.accepted}, rejected ${p.rejected}`);
  out(`packets:  sent ${s.packets.sent}, accepted ${s.packets.accepted}, rejected ${s.packets.rejected}`);
  out(`done in ${(s.durationMs / 1000).toFixed(1)} s; files, archive, quarantine and log: ${s.runDir}`);
}

void basename;
