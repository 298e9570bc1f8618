import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { BusConfig } from '../config/schema.ts';
import { openStore, type Store } from '../connectors/store/db.ts';
import { storePayeeVersion, loadCurrentPayees } from '../connectors/store/payees.ts';
import { Broker, type Outcome } from '../connectors/amqp/broker.ts';
import { expandTiers, type RetryPolicy } from '../connectors/amqp/retry.ts';
import { guarded, type GuardedMessage } from '../routes/delivery.ts';
import { Parking } from '../routes/parking.ts';
import { buildTopology } from '../connectors/amqp/topology.ts';
import type { Logger } from '../connectors/log.ts';
import { createProvider, loadCertificate, loadPrivateKey } from '../connectors/smev3/crypto/index.ts';
import { SmevClient } from '../connectors/smev3/client.ts';
import { loadSchemaSet, validate } from '../connectors/xsd/validator.ts';
import { csvLayoutSchema, type CsvLayout } from '../transformers/csv/layout.ts';
import { parsePayeesCsv, PayeeIndex } from '../transformers/classify/payees.ts';
import { Intake, type FileOutcome } from '../routes/intake.ts';
import { Batcher, chunkIds } from '../routes/batcher.ts';
import { Sender } from '../routes/sender.ts';
import { Poller } from '../routes/poller.ts';
import { Sweeper } from '../routes/sweeper.ts';
import { RegistryRefresher } from '../routes/registry.ts';
import { parseCron } from '../transformers/cron.ts';
import { formatPayeesCsv } from '../transformers/classify/payees.ts';
import { encodeText, writeOutboxFile } from '../connectors/outbox.ts';
import { Inbox } from './inbox.ts';
import { classifyConfig } from './classify-cli.ts';
import { adminApp, listen } from './admin.ts';

export interface BusHandle {
  config: BusConfig;
  store: Store;
  broker: Broker;
  intake: Intake;
  inbox?: Inbox;
  poller: Poller;
  parking: Parking;
  registry: RegistryRefresher;
  /** the registry version payments are classified against now */
  payees(): { versionId?: number; size: number };
  adminPort?: number;
  onFile(cb: (o: FileOutcome) => void): void;
  stop(): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** registry CSV to load instead of config.payees.file */
  payeesFile?: string;
  /** roles; default all */
  inbox?: boolean;
  admin?: boolean;
}

export function loadCsvLayouts(file: string): CsvLayout[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`CSV layouts ${file}: ${(e as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : (doc as { layouts?: unknown })?.layouts;
  const r = z.array(csvLayoutSchema).safeParse(list);
  if (!r.success) {
    throw new Error(`CSV layouts ${file} are not valid:\n` + r.error.issues.map((i) => `  - layouts[${i.path.join('.')}]: ${i.message}`).join('\n'));
  }
  return r.data;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
}

/** Starts every role of the bus in this process. */
export async function startBus(config: BusConfig, opts: StartOptions): Promise<BusHandle> {
  const log = opts.log;
  const layouts = loadCsvLayouts(config.csvLayouts);
  const provider = createProvider(config.smev.provider);
  const signer = {
    key: loadPrivateKey(readText(config.smev.key, 'smev.key')),
    cert: loadCertificate(readFileSync(config.smev.cert)),
    provider,
  };
  const trusted = config.smev.trust.map((t) => loadCertificate(readFileSync(t)));
  const gisSchemas = await loadSchemaSet('gis-payments-1.0.0');

  const store = await openStore(config.database.url, { pool: config.database.pool, log });
  const payeesFile = opts.payeesFile ?? config.payees.file;
  if (payeesFile) {
    const { records, rejected } = parsePayeesCsv(readFileSync(payeesFile), payeesFile);
    for (const r of rejected) log.warn('payee registry row rejected', { file: payeesFile, ...r });
    // an unchanged file does not replace a registry downloaded from ГИС since it was loaded
    const v = await storePayeeVersion(store, payeesFile, records, rejected.length, undefined, { sinceLastOfSource: true });
    log.info(v.unchanged ? 'payee registry file unchanged: current version kept' : 'payee registry loaded',
      { file: payeesFile, versionId: v.id, records: records.length, rejected: rejected.length });
  }
  const current = await loadCurrentPayees(store);
  if (!current.version) log.warn('no payee registry: payments are selected by ЖКУ identifiers only');
  let registry = { index: new PayeeIndex(current.records), versionId: current.version?.id };

  const policy: RetryPolicy = { delays: config.broker.retryDelays, untilMs: config.broker.retryUntil };
  const topology = buildTopology({ prefix: config.broker.prefix, deliveryLimit: config.broker.deliveryLimit, retryDelays: config.broker.retryDelays });
  const broker = new Broker(config.broker.url, topology, log.child({ component: 'broker' }));
  await broker.start();

  // reportable payments are announced in chunks of up to 500 ids (order does not matter to the batcher),
  // up to 32 chunks in flight at once, each waiting for its confirm
  const publishPayments = async (ids: number[]) => {
    const chunks = chunkIds(ids);
    for (let i = 0; i < chunks.length; i += 32) {
      await Promise.all(chunks.slice(i, i + 32).map((c) =>
        broker.publish(topology.workExchange, 'payment.reportable', { paymentIds: c }, { messageId: `payments-${c[0]}-${c[c.length - 1]}-${c.length}` })));
    }
  };
  const publishPacket = (id: number, messageId: string) =>
    broker.publish(topology.workExchange, 'packet.ready', { packetId: id }, { messageId: `packet-${id}`, correlationId: messageId });

  const intake = new Intake({
    store, layouts: () => layouts, registry: () => registry, bankBic: config.gis.bankBic, log: log.child({ component: 'intake' }),
    classify: classifyConfig(config),
  });
  const listeners: ((o: FileOutcome) => void)[] = [];
  const afterCommit = async (o: FileOutcome) => {
    await publishPayments(o.reportableIds);
    for (const l of listeners) l(o);
  };

  const client = new SmevClient({
    endpoint: config.smev.endpoint, version: config.smev.version, signer, trusted, provider, timeoutMs: config.smev.timeoutMs,
    testMessage: config.smev.testMessage, store, log: log.child({ component: 'smev' }),
  });
  const registrySchemas = await loadSchemaSet('gis-payee-registry-1.0.0');
  let poller: Poller | undefined;
  const refresher = new RegistryRefresher({
    store, client, log: log.child({ component: 'registry' }),
    informationSystemId: config.gis.informationSystemId, organizationId: config.gis.organizationId,
    pageSize: config.payees.refresh.pageSize, timeoutMs: config.payees.refresh.timeoutMs,
    validate: (xml) => validate(xml, registrySchemas),
    wakePoller: () => poller?.wake(),
    onVersion: async (v) => {
      // payments from now on are classified against the new version
      const cur = await loadCurrentPayees(store);
      registry = { index: new PayeeIndex(cur.records), versionId: cur.version?.id };
      if (config.payees.outbox) {
        const file = await writeOutboxFile(config.payees.outbox, `payees_v${v.id}.csv`, encodeText(formatPayeesCsv(cur.records), config.payees.outboxEncoding));
        log.info('payee registry written to the outbox', { versionId: v.id, file, records: cur.records.length });
      }
    },
  });
  poller = new Poller({
    store, client, log: log.child({ component: 'poller' }), minMs: config.smev.pollMinMs, maxMs: config.smev.pollMaxMs, loops: config.smev.pollers, publishPacket, publishPayments,
    registry: refresher,
  });
  const batcher = new Batcher({ store, log: log.child({ component: 'batcher' }), maxItems: config.batch.maxItems, maxWaitMs: config.batch.maxWaitMs, publishPacket });
  const sender = new Sender({
    store, client, log: log.child({ component: 'sender' }),
    informationSystemId: config.gis.informationSystemId, organizationId: config.gis.organizationId,
    validate: (xml) => validate(xml, gisSchemas), onSent: () => poller.wake(),
  });
  const paymentQueues = [topology.routes.payments.queue, ...topology.routes.payments.retryQueues];
  const sweeper = new Sweeper({
    store, log: log.child({ component: 'sweeper' }), publishPayments, publishPacket, staleMs: Math.max(60_000, config.batch.maxWaitMs * 10),
    paymentsQueued: async () => {
      const depths = await broker.queueDepths();
      return paymentQueues.reduce((n, q) => n + (depths[q]?.messages ?? 0), 0);
    },
  });

  // every retry and park is decided by the retry policy and recorded in PostgreSQL (routes/delivery.ts)
  const guard = (route: 'payments' | 'packets', h: (m: GuardedMessage) => Promise<Outcome>) => {
    const r = topology.routes[route];
    const retryQueues = expandTiers(r.retryQueues, policy);
    return { handler: guarded(h, { store, log: log.child({ component: 'delivery', route }), policy, queue: r.queue, parkedQueue: r.parkedQueue, route, retryQueues }), retryQueues };
  };
  const payments = guard('payments', batcher.handle);
  const packets = guard('packets', sender.handle);
  // a payment.reportable message holds up to 500 ids: broker.prefetch (default 32) of them keep the batcher busy
  // without holding a huge backlog unacknowledged (a graceful stop packs what is held); older single-id messages
  // are then packed in smaller packets, which is correct, only less efficient
  await broker.consume(topology.routes.payments.queue, payments.handler, { prefetch: config.broker.prefetch, retryQueues: payments.retryQueues });
  await broker.consume(topology.routes.packets.queue, packets.handler, { prefetch: config.smev.concurrency, retryQueues: packets.retryQueues });
  poller.start();
  if (config.payees.refresh.schedule !== 'off') refresher.schedule(parseCron(config.payees.refresh.schedule), config.payees.refresh.utc);
  // at start-up everything still REPORTABLE or BUILT-and-never-sent was left by a previous run (a crash
  // between a commit and its publish): announce it now, not after staleMs (the consumers are idempotent)
  await sweeper.sweep(0, true);
  sweeper.start(30_000);

  let inbox: Inbox | undefined;
  if (opts.inbox !== false) {
    inbox = new Inbox(config.inbox, intake, afterCommit, log.child({ component: 'inbox' }));
    await inbox.start();
    log.info('watching inbox', { path: config.inbox.path });
  }
  const parking = new Parking({ store, topology, brokerUrl: config.broker.url, log: log.child({ component: 'parking' }) });
  let admin: Awaited<ReturnType<typeof listen>> | undefined;
  if (opts.admin !== false) {
    const app = adminApp({
      store, broker, token: config.admin.token, intake, afterCommit, maxBodyBytes: config.inbox.maxFileBytes, parking, registry: refresher,
      counters: () => ({ packetsBuilt: batcher.packetsBuilt, packetsSent: sender.sent, responsesReceived: poller.received,
        smevCalls: client.calls, untrustedReplies: client.untrusted, republished: sweeper.republished, pollerLastError: poller.lastError }),
    });
    admin = await listen(app, config.admin.host, config.admin.port);
    log.info('admin endpoint listening', { url: `http://${config.admin.host}:${admin.port}` });
  }

  let stopping: Promise<void> | undefined;
  return {
    config, store, broker, intake, inbox, poller, parking, registry: refresher, adminPort: admin?.port,
    payees: () => ({ versionId: registry.versionId, size: registry.index.size }),
    onFile: (cb) => listeners.push(cb),
    stop: () => (stopping ??= (async () => {
      log.info('stopping: finishing in-flight work');
      await inbox?.stop();             // no new files; the file in hand is finished
      await batcher.drain();           // pending payments are packed
      await sweeper.stop();
      refresher.stop();
      await broker.close();            // consumers cancelled, in-flight messages settled
      await poller.stop();
      await admin?.close();
      await store.close();
      log.info('stopped');
    })()),
  };
}
