/**
 * One chaos scenario's world: its own database, queue prefix, folders, test keys and simulator, and the bus
 * as a separate child process (`node bin/gkh-bus.js start` with GKH_* environment), so that kill -9 is real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import amqp from 'amqplib';
import { createLogger } from '../../connectors/log.ts';
import { dropDatabase } from '../../connectors/store/db.ts';
import { deleteTopology, sleep } from '../../connectors/amqp/broker.ts';
import { buildTopology, type Topology } from '../../connectors/amqp/topology.ts';
import { createProvider, loadCertificate } from '../../connectors/smev3/crypto/index.ts';
import { parsePayeesCsv } from '../../transformers/classify/payees.ts';
import { SmevSimulator } from '../../simulator/server.ts';
import { ensureTestKeys, loadSigner } from '../../gateway/keys.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BROKER_URL = process.env.GKH_CHAOS_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const PG_BASE = process.env.GKH_CHAOS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000];
/**
 * The GOST provider of the bus and the simulator: OpenSSL's gost-engine when installed (native, several times
 * faster than the pure-JS provider, which makes the suite CPU-bound on a small machine), else js.
 */
export const PROVIDER = (process.env.GKH_CHAOS_PROVIDER ?? (existsSync('/usr/lib/x86_64-linux-gnu/engines-3/gost.so') ? 'openssl' : 'js')) as 'js' | 'openssl';

export interface ChaosEnvOptions {
  batchMaxItems?: number;
  smevTimeoutMs?: number;
}

export class ChaosEnv {
  readonly id = `${process.pid}_${randomBytes(3).toString('hex')}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'gkh-chaos-'));
  readonly inbox = join(this.dir, 'inbox');
  readonly processing = join(this.dir, 'processing');
  readonly archive = join(this.dir, 'archive');
  readonly quarantine = join(this.dir, 'quarantine');
  readonly keys = join(this.dir, 'keys');
  readonly dbName = `gkh_t_chaos_${this.id}`;
  readonly dbUrl = `${PG_BASE}/${this.dbName}`;
  readonly prefix = `t-chaos-${this.id}`;
  readonly topology: Topology = buildTopology({ prefix: this.prefix, deliveryLimit: 5, retryDelays: RETRY_DELAYS });
  readonly logFile = join(this.dir, 'bus.log');
  sim!: SmevSimulator;
  bus?: ChildProcess;
  busExit?: Promise<number | null>;
  starts = 0;
  private pgc?: pg.Client;

  constructor(readonly name: string, private o: ChaosEnvOptions = {}) {
    for (const d of [this.inbox, this.processing, this.archive, this.quarantine]) mkdirSync(d, { recursive: true });
    ensureTestKeys(this.keys);
  }

  async startSim(): Promise<void> {
    const provider = createProvider(PROVIDER);
    const payeesFile = join(ROOT, 'examples/payees.csv');
    this.sim = new SmevSimulator({
      port: 0, provider, smev: loadSigner(this.keys, 'smev', provider), gis: loadSigner(this.keys, 'gis', provider),
      clients: [{ cert: loadCertificate(readFileSync(join(this.keys, 'bank.cert.pem'))), mnemonic: 'BANK01' }],
      payees: parsePayeesCsv(readFileSync(payeesFile), payeesFile).records, latencyMs: 50, redeliverAfterMs: 2000,
      log: createLogger({ level: 'error' }),
    });
    await this.sim.start();
  }

  env(): NodeJS.ProcessEnv {
    const k = (n: string) => join(this.keys, n);
    return {
      PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: process.env.NODE_OPTIONS,
      GKH_DATABASE_URL: this.dbUrl,
      GKH_DATABASE_POOL: '5',
      GKH_BROKER_URL: BROKER_URL,
      GKH_BROKER_PREFIX: this.prefix,
      GKH_BROKER_RETRY_DELAYS: RETRY_DELAYS.join(','),
      // the last tier repeats until 60 s after the first failure, then the message is parked
      GKH_BROKER_RETRY_UNTIL: '60s',
      GKH_BROKER_DELIVERY_LIMIT: '5',
      GKH_INBOX_PATH: this.inbox, GKH_INBOX_PROCESSING: this.processing, GKH_INBOX_ARCHIVE: this.archive, GKH_INBOX_QUARANTINE: this.quarantine,
      GKH_INBOX_STABLE_MS: '400',
      GKH_BATCH_MAX_ITEMS: String(this.o.batchMaxItems ?? 100),
      GKH_BATCH_MAX_WAIT_MS: '1500',
      GKH_SMEV_ENDPOINT: `http://127.0.0.1:${this.sim.port}/smev`,
      GKH_SMEV_KEY: k('bank.key.pem'), GKH_SMEV_CERT: k('bank.cert.pem'), GKH_SMEV_TRUST: k('smev.cert.pem'),
      GKH_SMEV_PROVIDER: PROVIDER,
      GKH_SMEV_TIMEOUT_MS: String(this.o.smevTimeoutMs ?? 20_000),
      GKH_SMEV_POLL_MIN_MS: '50', GKH_SMEV_POLL_MAX_MS: '300',
      GKH_ADMIN_PORT: '0',
      GKH_LOG_LEVEL: 'info',
    };
  }

  /** Starts the bus child process and waits until it logs that it has started. */
  async startBus(): Promise<void> {
    if (this.bus) throw new Error('bus already running');
    this.starts++;
    const out = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [join(ROOT, 'bin/gkh-bus.js'), 'start'], { cwd: ROOT, env: this.env(), stdio: ['ignore', out, out] });
    closeSync(out);
    this.bus = child;
    this.busExit = new Promise((r) => child.once('exit', (code, sig) => { this.bus = undefined; r(code ?? (sig ? 128 : null)); }));
    const marker = `"msg":"gkh-bus started"`;
    const end = Date.now() + 60_000;
    for (;;) {
      const log = readFileSync(this.logFile, 'utf8');
      if (log.split(marker).length - 1 >= this.starts) return;
      if (!this.bus) throw new Error(`bus exited during start-up; see ${this.logFile}`);
      if (Date.now() > end) throw new Error(`bus did not start within 60 s; see ${this.logFile}`);
      await sleep(50);
    }
  }

  /** kill -9: no shutdown code runs. */
  async kill9(): Promise<void> {
    const b = this.bus;
    if (!b) return;
    b.kill('SIGKILL');
    await this.busExit;
  }

  /** SIGTERM; resolves with the exit code. */
  async sigterm(timeoutMs = 30_000): Promise<number | null> {
    const b = this.bus;
    if (!b) return null;
    b.kill('SIGTERM');
    const t = sleep(timeoutMs).then(() => 'timeout' as const);
    const r = await Promise.race([this.busExit!, t]);
    if (r === 'timeout') {
      b.kill('SIGKILL');
      await this.busExit;
      throw new Error(`bus did not stop within ${timeoutMs} ms of SIGTERM`);
    }
    return r;
  }

  async db(): Promise<pg.Client> {
    if (this.pgc) return this.pgc;
    const c = new pg.Client({ connectionString: this.dbUrl, application_name: 'gkh-chaos-checker' });
    c.on('error', () => { this.pgc = undefined; });
    await c.connect();
    this.pgc = c;
    return c;
  }

  async query<T = Record<string, unknown>>(sql: string, args: unknown[] = []): Promise<T[]> {
    for (let i = 0; ; i++) {
      try {
        return (await (await this.db()).query(sql, args)).rows as T[];
      } catch (e) {
        // the checker's own connection may be cut by a database scenario: reconnect
        await this.pgc?.end().catch(() => {});
        this.pgc = undefined;
        if (i >= 30) throw e;
        await sleep(500);
      }
    }
  }

  /** Writes a file next to the inbox, then renames it in (what a careful АБС does). */
  drop(name: string, content: Buffer | string): void {
    const tmp = join(this.dir, `.${name}.part`);
    writeFileSync(tmp, content);
    renameSync(tmp, join(this.inbox, name));
  }

  async close(): Promise<void> {
    if (this.bus) await this.kill9();
    await this.pgc?.end().catch(() => {});
    await this.sim?.stop().catch(() => {});
    await deleteTopology(BROKER_URL, this.topology).catch(() => {});
    await dropDatabase(this.dbUrl).catch(() => {});
    if (!process.env.GKH_CHAOS_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Message counts of every queue of the scenario's topology. */
export async function queueDepths(t: Topology): Promise<Record<string, number>> {
  const conn = await amqp.connect(BROKER_URL);
  try {
    const ch = await conn.createChannel();
    const out: Record<string, number> = {};
    for (const q of t.queues) out[q.name] = (await ch.checkQueue(q.name)).messageCount;
    await ch.close();
    return out;
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Publishes raw bytes to a work route (poison messages). */
export async function publishRaw(t: Topology, key: string, body: Buffer): Promise<void> {
  const conn = await amqp.connect(BROKER_URL);
  try {
    const ch = await conn.createConfirmChannel();
    ch.publish(t.workExchange, key, body, { persistent: true, messageId: `poison-${randomBytes(4).toString('hex')}` });
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close().catch(() => {});
  }
}
