import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, ConfigError } from '../config/load.ts';
import { createLogger } from '../connectors/log.ts';
import { createProvider, loadCertificate } from '../connectors/smev3/crypto/index.ts';
import { parsePayeesCsv } from '../transformers/classify/payees.ts';
import { SmevSimulator } from '../simulator/server.ts';
import { startBus } from './bus.ts';
import { ensureTestKeys, loadSigner } from './keys.ts';
import { runDemo, DEMO_HELP } from './demo.ts';
import { userInfo } from 'node:os';
import { openStore } from '../connectors/store/db.ts';
import { buildTopology } from '../connectors/amqp/topology.ts';
import { Parking, ReplayError, parseReplayFilter } from '../routes/parking.ts';
import { smevTools, SMEV_HELP } from './smev-tools.ts';
import { CLASSIFY_HELP, PAYEES_HELP, runClassify, runPayeesRefresh } from './classify-cli.ts';
import { runBench, BENCH_HELP, parseCount, parseSize } from './bench.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CONFIG = resolve(ROOT, 'config/bus.yaml');
const DEFAULT_KEYS = resolve(ROOT, 'var/keys');

const HELP = `gkh-bus — bank-side integration bus to ГИС ЖКХ through SMEV 3

Usage: gkh-bus <command> [options]

Commands:
  start           run the bus as a service (config/bus.yaml + GKH_* environment) until SIGTERM
  sim             run the SMEV 3 + ГИС ЖКХ simulator
  demo            run the simulator and the bus on example (or your) files and print a summary
  keys generate   make GOST 2012-256 test key pairs with self-signed certificates
  smev            SMEV 3 XML tools: transform (digested bytes), verify (every signature), sign
  parking         list parked messages with their reasons; replay them to their work queue (audited)
  classify        the selection decision for every payment of UFEBS/CSV files (tune the marker patterns)
  payees refresh  download the payee registry from ГИС now (through the running bus)
  bench           throughput benchmark with the broker's and the database's ceilings beside it

Run "gkh-bus <command> --help" for the options of a command.`;

const HELPS: Record<string, string> = {
  start: `Usage: gkh-bus start [--config <file>]

Runs every role of the bus: inbox watcher, intake, batcher, SMEV sender and poller, admin endpoint, and the
payee registry download from ГИС (payees.refresh.schedule, cron; one instance at a time).
  --config <file>   YAML configuration (default config/bus.yaml; or GKH_CONFIG)
Environment: GKH_<PATH> overrides a setting, e.g. GKH_DATABASE_URL, GKH_SMEV_ENDPOINT, GKH_ADMIN_TOKEN.
When the configured key files are the development defaults under var/keys and do not exist yet,
test keys are generated there (never do that in production: configure the bank's real key).
SIGTERM or SIGINT: stop taking new work, finish in-flight work, exit 0. A second signal, or a drain
longer than 120 s, exits 1 at once (unsettled messages are redelivered after the restart).
An unhandled error is logged and the process exits 70, so that a supervisor restarts it.`,
  sim: `Usage: gkh-bus sim [options]

Runs the SMEV 3 + ГИС ЖКХ simulator over HTTP (POST SOAP to any path; GET /sim/state for its state).
  --port <n>             listen port (default 7575)
  --host <addr>          listen address (default 127.0.0.1)
  --keys <dir>           where smev/gis/bank test keys live (default var/keys; created if missing)
  --client <cert>=<MN>   a registered information system: certificate file and mnemonic
                         (default: <keys>/bank.cert.pem=BANK01); repeatable
  --payees <csv>         payee registry ГИС knows (default examples/payees.csv); part of the registry it exports
  --registry-size <n>    generated organisations in the exported payee registry (ВС 95796; default 20000)
  --registry-seed <n>    seed of the generated registry (default 95796; the same seed gives the same registry)
  --latency <ms>         time ГИС takes to answer a packet (default 200)
  --accept-unknown-payees  accept notifications to payees ГИС does not know
  --mtom                 answer as MTOM multipart/related, as SMEV's Apache CXF does
  --redeliver <ms>       deliver an unacknowledged response again after this long (default 30000)
  --stale-after <ms>     a MessageID older than this is StaleMessageId (default 2 days)
Wire versions 1.1, 1.2 and 1.3 are all served: each request is answered in its own version.
Faults (SMEVFailure, DestinationOverflow, HTTP 503, disconnects, untrusted signatures, ГИС EXP001000)
are injected from tests through SmevSimulator.inject() / injectGis().`,
  keys: `Usage: gkh-bus keys generate [--out <dir>] [--force]

Writes bank.*, smev.* and gis.* .key.pem (PKCS#8) and .cert.pem (self-signed X.509) GOST R 34.10-2012-256
test key pairs into <dir> (default var/keys). Existing pairs are kept unless --force.`,
  parking: `Usage: gkh-bus parking list [--json] [--config <file>]
       gkh-bus parking replay <queue> (--all | --id <id>… | --reason <text> | --parked-before <time>) [--json] [--config <file>]

list     every parked queue with its depth and, per parked message, its id, message id, packet or payment,
         attempts, parked-at time, reason and attempt history (from PostgreSQL)
replay   moves parked messages of <queue> (a route name "packets" / "payments", or the queue's full name)
         back to their work queue: attempt counter reset, history kept; a PARKED packet goes back to BUILT and
         is sent again with its MessageID. Select with --all, one or more --id (message id such as packet-12,
         or the parked message number), --reason (text the reason contains, case-insensitive) and/or
         --parked-before (ISO time); criteria combine with AND. Recorded in the audit log as "cli:<user>".
  --config <file>   YAML configuration (default config/bus.yaml; or GKH_CONFIG); the bus need not be running
  --json            print JSON instead of text
Exit status: 0 done, 1 failure, 2 usage error.`,
  demo: DEMO_HELP,
  smev: SMEV_HELP,
  classify: CLASSIFY_HELP,
  payees: PAYEES_HELP,
  bench: BENCH_HELP,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function args(argv: string[], options: ParseArgsConfig['options']): { values: Record<string, any>; positionals: string[] } {
  return parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  try {
    switch (cmd) {
      case 'start': return await start(rest);
      case 'sim': return await sim(rest);
      case 'demo': {
        const a = args(rest, { files: { type: 'string' }, payees: { type: 'string' }, json: { type: 'boolean' }, keep: { type: 'boolean' }, config: { type: 'string' }, timeout: { type: 'string' } });
        if (a.values.help) return help('demo');
        return await runDemo({ root: ROOT, configFile: a.values.config ?? DEFAULT_CONFIG, files: a.values.files, payees: a.values.payees,
          json: !!a.values.json, keep: !!a.values.keep, timeoutMs: a.values.timeout ? secondsOption('--timeout', a.values.timeout) * 1000 : undefined });
      }
      case 'keys': {
        const a = args(rest, { out: { type: 'string' }, force: { type: 'boolean' } });
        if (a.values.help || a.positionals[0] !== 'generate') return help('keys', !a.values.help);
        const out = resolve(a.values.out ?? DEFAULT_KEYS);
        const made = ensureTestKeys(out, ['bank', 'smev', 'gis'], !!a.values.force);
        console.log(made.length ? `wrote ${made.map((p) => `${p}.key.pem, ${p}.cert.pem`).join('; ')} in ${out}` : `keys already present in ${out} (use --force to replace)`);
        return 0;
      }
      case 'smev': return await smevTools(rest);
      case 'parking': return await parkingCmd(rest);
      case 'classify': {
        const a = args(rest, { payees: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' } });
        if (a.values.help) return help('classify');
        if (!a.positionals.length) return help('classify', true);
        const { config } = loadConfig(a.values.config ?? process.env.GKH_CONFIG ?? DEFAULT_CONFIG);
        return await runClassify(config, a.positionals, { payees: a.values.payees, json: !!a.values.json });
      }
      case 'payees': {
        const a = args(rest, { wait: { type: 'boolean' }, config: { type: 'string' } });
        if (a.values.help || a.positionals[0] !== 'refresh') return help('payees', !a.values.help);
        const { config } = loadConfig(a.values.config ?? process.env.GKH_CONFIG ?? DEFAULT_CONFIG);
        return await runPayeesRefresh(config, !!a.values.wait);
      }
      case 'bench': {
        const a = args(rest, { payments: { type: 'string' }, json: { type: 'boolean' }, 'big-file': { type: 'string' }, provider: { type: 'string' },
          keep: { type: 'boolean' }, config: { type: 'string' }, timeout: { type: 'string' } });
        if (a.values.help) return help('bench');
        const provider = a.values.provider;
        if (provider !== undefined && provider !== 'js' && provider !== 'openssl') {
          throw Object.assign(new Error(`--provider ${provider}: expected js or openssl`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
        }
        return await runBench({ root: ROOT, configFile: a.values.config ?? DEFAULT_CONFIG, payments: parseCount(a.values.payments ?? '200000'),
          json: !!a.values.json, bigFileBytes: a.values['big-file'] ? parseSize(a.values['big-file']) : undefined, provider,
          keep: !!a.values.keep, timeoutMs: (a.values.timeout ? secondsOption('--timeout', a.values.timeout) : 1800) * 1000 });
      }
      default:
        console.error(`unknown command "${cmd}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 78; // EX_CONFIG
    }
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(e as Error).message}\n\n${HELPS[cmd] ?? HELP}`);
      return 2;
    }
    console.error(`gkh-bus ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}

function help(cmd: string, error = false): number {
  (error ? console.error : console.log)(HELPS[cmd]);
  return error ? 2 : 0;
}

async function start(argv: string[]): Promise<number> {
  const a = args(argv, { config: { type: 'string' } });
  if (a.values.help) return help('start');
  const file = a.values.config ?? process.env.GKH_CONFIG ?? DEFAULT_CONFIG;
  const { config } = loadConfig(file);
  const log = createLogger({ level: config.log.level });
  const keyDir = dirname(config.smev.key);
  if (keyDir === DEFAULT_KEYS) {
    const made = ensureTestKeys(DEFAULT_KEYS);
    if (made.length) log.warn('generated TEST keys for development; configure the bank\'s real key and certificate for production', { dir: DEFAULT_KEYS, parties: made });
  }
  // An error nobody handled means the process is in an unknown state: log it as JSON and exit 70 rather
  // than run on half-broken or hang silently. Nothing is lost by exiting: every step is committed before it
  // is acknowledged, and a restart (systemd, Docker restart policy) resumes the work (see "Guaranteed delivery").
  const fatal = (kind: string) => (e: unknown) => {
    log.error(`${kind}: exiting so that the supervisor restarts the bus`, { err: e instanceof Error ? e : new Error(String(e)) });
    process.exit(70);
  };
  process.on('unhandledRejection', fatal('unhandled promise rejection'));
  process.on('uncaughtException', fatal('uncaught exception'));
  const bus = await startBus(config, { log });
  log.info('gkh-bus started', { config: file, admin: bus.adminPort, pid: process.pid });
  await new Promise<void>((resolveStop) => {
    const onSignal = (sig: string) => {
      log.info('signal received', { signal: sig });
      resolveStop();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  // a second signal, or a drain that takes longer than STOP_TIMEOUT_MS, ends the process at once (exit 1);
  // what was not settled is redelivered after the restart
  const force = (why: string) => {
    log.error(`${why}: exiting without finishing the drain`);
    process.exit(1);
  };
  process.once('SIGTERM', () => force('second SIGTERM'));
  process.once('SIGINT', () => force('second SIGINT'));
  setTimeout(() => force(`drain not finished within ${STOP_TIMEOUT_MS / 1000} s`), STOP_TIMEOUT_MS).unref();
  await bus.stop();
  return 0;
}

const STOP_TIMEOUT_MS = 120_000;

/** a positive number of seconds, or a usage error naming the option (`--timeout abc` used to mean "no timeout") */
function secondsOption(name: string, v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0)) {
    throw Object.assign(new Error(`${name} ${v}: expected a number of seconds greater than 0`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  }
  return n;
}

/** a non-negative whole number of milliseconds, or a usage error naming the option */
function msOption(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw Object.assign(new Error(`${name} ${v}: expected milliseconds (a whole number)`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  return Number(v);
}

function intOption(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw Object.assign(new Error(`${name} ${v}: expected a whole number`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  return Number(v);
}

async function sim(argv: string[]): Promise<number> {
  const a = args(argv, {
    port: { type: 'string' }, host: { type: 'string' }, keys: { type: 'string' }, client: { type: 'string', multiple: true },
    payees: { type: 'string' }, latency: { type: 'string' }, 'accept-unknown-payees': { type: 'boolean' },
    mtom: { type: 'boolean' }, redeliver: { type: 'string' }, 'stale-after': { type: 'string' },
    'registry-size': { type: 'string' }, 'registry-seed': { type: 'string' },
  });
  if (a.values.help) return help('sim');
  const log = createLogger({ level: 'info' });
  const keys = resolve(a.values.keys ?? DEFAULT_KEYS);
  ensureTestKeys(keys);
  const provider = createProvider('js');
  const clients = (a.values.client ?? [`${resolve(keys, 'bank.cert.pem')}=BANK01`]).map((c: string) => {
    const i = c.lastIndexOf('=');
    if (i < 1) throw new Error(`--client ${c}: expected <certificate file>=<MNEMONIC>`);
    return { cert: loadCertificate(readFileSync(c.slice(0, i))), mnemonic: c.slice(i + 1) };
  });
  const payeesFile = resolve(a.values.payees ?? resolve(ROOT, 'examples/payees.csv'));
  const simulator = new SmevSimulator({
    host: a.values.host, port: a.values.port ? Number(a.values.port) : 7575, provider,
    smev: loadSigner(keys, 'smev', provider), gis: loadSigner(keys, 'gis', provider), clients,
    payees: parsePayeesCsv(readFileSync(payeesFile), payeesFile).records,
    latencyMs: a.values.latency ? msOption('--latency', a.values.latency) : 200, acceptUnknownPayees: !!a.values['accept-unknown-payees'], log,
    mtom: !!a.values.mtom,
    redeliverAfterMs: a.values.redeliver ? msOption('--redeliver', a.values.redeliver) : undefined,
    staleMessageIdMs: a.values['stale-after'] ? msOption('--stale-after', a.values['stale-after']) : undefined,
    registry: {
      ...(a.values['registry-size'] ? { organizations: intOption('--registry-size', a.values['registry-size']) } : {}),
      ...(a.values['registry-seed'] ? { seed: intOption('--registry-seed', a.values['registry-seed']) } : {}),
    },
  });
  const port = await simulator.start();
  log.info('SMEV 3 + ГИС ЖКХ simulator listening', { url: `http://${a.values.host ?? '127.0.0.1'}:${port}/smev`, clients: clients.map((c: { mnemonic: string }) => c.mnemonic) });
  await new Promise<void>((r) => { process.once('SIGTERM', () => r()); process.once('SIGINT', () => r()); });
  await simulator.stop();
  return 0;
}

async function parkingCmd(argv: string[]): Promise<number> {
  const a = args(argv, {
    config: { type: 'string' }, json: { type: 'boolean' }, all: { type: 'boolean' }, id: { type: 'string', multiple: true },
    reason: { type: 'string' }, 'parked-before': { type: 'string' },
  });
  const [sub, queue, ...extra] = a.positionals;
  if (a.values.help) return help('parking');
  if (!['list', 'replay'].includes(sub) || (sub === 'replay' && !queue) || extra.length || (sub === 'list' && queue)) return help('parking', true);
  let filter;
  if (sub === 'replay') {
    try {
      filter = parseReplayFilter({ ...(a.values.all ? { all: true } : {}), ...(a.values.id ? { ids: a.values.id } : {}),
        ...(a.values.reason !== undefined ? { reason: a.values.reason } : {}), ...(a.values['parked-before'] !== undefined ? { parkedBefore: a.values['parked-before'] } : {}) });
    } catch (e) {
      const msg = (e as Error).message.replace(/\{ "all": true \}/g, '--all').replace(/\{ "ids": \[\.\.\.\] \}/g, '--id <id>')
        .replace(/"parkedBefore"/g, '--parked-before').replace(/"reason"/g, '--reason').replace(/"ids"/g, '--id').replace(/"all"/g, '--all');
      console.error(`gkh-bus parking replay: ${msg}\n\n${HELPS.parking}`);
      return 2;
    }
  }
  const file = a.values.config ?? process.env.GKH_CONFIG ?? DEFAULT_CONFIG;
  const { config } = loadConfig(file);
  const log = createLogger({ level: 'warn' });
  const store = await openStore(config.database.url, { pool: 3, log });
  try {
    const topology = buildTopology({ prefix: config.broker.prefix, deliveryLimit: config.broker.deliveryLimit, retryDelays: config.broker.retryDelays });
    const parking = new Parking({ store, topology, brokerUrl: config.broker.url, log });
    if (sub === 'list') {
      const l = await parking.list();
      if (a.values.json) console.log(JSON.stringify(l, null, 2));
      else {
        for (const q of l.queues) {
          console.log(`${q.parkedQueue} (route ${q.route}): ${q.depth ?? '?'} in the queue, ${q.messages.length} recorded`);
          for (const m of q.messages as { id: number; messageId: string; packetId: number | null; paymentId: number | null; attempts: number; parkedAt: string | Date; reason: string }[]) {
            const what = m.packetId !== null ? `packet ${m.packetId}` : m.paymentId !== null ? `payment ${m.paymentId}` : '-';
            console.log(`  #${m.id}  ${m.messageId}  ${what}  attempts ${m.attempts}  parked ${new Date(m.parkedAt).toISOString()}  ${m.reason}`);
          }
        }
      }
      return 0;
    }
    const actor = `cli:${safeUser()}`;
    const r = await parking.replay(queue, filter!, actor);
    if (a.values.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(`replayed ${r.replayed.length} message(s) from ${r.parkedQueue} to ${r.queue}${r.replayed.length ? ': ' + r.replayed.map((m) => m.messageId).join(', ') : ''}`);
      console.log(`kept parked: ${r.kept}${r.notFound.length ? `; not found: ${r.notFound.join(', ')}` : ''}; audit record #${r.auditId} (${actor})`);
    }
    return 0;
  } catch (e) {
    if (e instanceof ReplayError) {
      console.error(`gkh-bus parking replay: ${e.message}`);
      return e.status === 409 ? 1 : 2;
    }
    throw e;
  } finally {
    await store.close();
  }
}

function safeUser(): string {
  try { return userInfo().username; } catch { return process.env.USER ?? 'unknown'; }
}
