/**
 * An isolated bus for one test file: its own PostgreSQL database, its own RabbitMQ prefix, its own folders,
 * test keys and a simulator on a free port. `close()` removes all of it.
 */
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../config/load.ts';
import { createLogger, type Logger } from '../../connectors/log.ts';
import { dropDatabase } from '../../connectors/store/db.ts';
import { deleteTopology, sleep } from '../../connectors/amqp/broker.ts';
import { buildTopology } from '../../connectors/amqp/topology.ts';
import { createProvider, loadCertificate } from '../../connectors/smev3/crypto/index.ts';
import { parsePayeesCsv } from '../../transformers/classify/payees.ts';
import { SmevSimulator, type SimulatorOptions } from '../../simulator/server.ts';
import { startBus, type BusHandle } from '../../gateway/bus.ts';
import { ensureTestKeys, loadSigner } from '../../gateway/keys.ts';
import type { BusConfig } from '../../config/schema.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
/** a copy of shared/data/samples (UFEBS and CSV samples, payee registry, expected outcomes in its README) */
export const SAMPLES = resolve(ROOT, 'test/fixtures/samples');
export const EXAMPLES = resolve(ROOT, 'examples');

export interface Harness {
  dir: string;
  keys: string;
  config: BusConfig;
  sim: SmevSimulator;
  bus: BusHandle;
  log: Logger;
  close(): Promise<void>;
}

export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

export async function startHarness(label: string, overrides: Record<string, unknown> = {}, opts: { startBus?: boolean; sim?: Partial<SimulatorOptions> } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), `gkh-${label}-`));
  const keys = join(dir, 'keys');
  ensureTestKeys(keys);
  const log = createLogger({ level: process.env.GKH_TEST_LOG ? 'debug' : 'error' });
  const provider = createProvider('js');
  const payeesFile = join(EXAMPLES, 'payees.csv');
  const sim = new SmevSimulator({
    port: 0, provider, smev: loadSigner(keys, 'smev', provider), gis: loadSigner(keys, 'gis', provider),
    clients: [{ cert: loadCertificate(readFileSync(join(keys, 'bank.cert.pem'))), mnemonic: 'BANK01' }],
    payees: parsePayeesCsv(readFileSync(payeesFile), payeesFile).records, latencyMs: 20, log,
    ...opts.sim,
  });
  const port = await sim.start();
  const db = uniqueName(`gkh_t_${label}`).toLowerCase();
  const { config } = loadConfig(join(ROOT, 'config/bus.yaml'), {}, {
    'database.url': `postgres://postgres@127.0.0.1:5432/${db}`,
    'broker.prefix': uniqueName(`t-${label}`),
    'broker.retryDelays': [300, 600], 'broker.retryUntil': undefined, // park after the last tier unless a test says otherwise
    'inbox.path': join(dir, 'inbox'), 'inbox.processing': join(dir, 'processing'), 'inbox.archive': join(dir, 'archive'),
    'inbox.quarantine': join(dir, 'quarantine'), 'inbox.stableMs': 100,
    'payees.file': payeesFile, 'batch.maxWaitMs': 200,
    'smev.endpoint': `http://127.0.0.1:${port}/smev`, 'smev.key': join(keys, 'bank.key.pem'), 'smev.cert': join(keys, 'bank.cert.pem'),
    'smev.trust': [join(keys, 'smev.cert.pem')], 'smev.pollMinMs': 50, 'smev.pollMaxMs': 300, 'smev.timeoutMs': 10_000,
    'admin.port': 0, 'payees.refresh.schedule': 'off',
    ...overrides,
  });
  const bus = opts.startBus === false ? (undefined as unknown as BusHandle) : await startBus(config, { log });
  return {
    dir, keys, config, sim, bus, log,
    async close() {
      await bus?.stop().catch(() => {});
      await sim.stop();
      await deleteTopology(config.broker.url, buildTopology({ prefix: config.broker.prefix, deliveryLimit: config.broker.deliveryLimit, retryDelays: config.broker.retryDelays })).catch(() => {});
      await dropDatabase(config.database.url).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until fn returns a truthy value or the time is up. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs = 20_000, what = 'condition'): Promise<Exclude<T, undefined | null | false | 0 | ''>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as Exclude<T, undefined | null | false | 0 | ''>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
