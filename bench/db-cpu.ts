/**
 * PostgreSQL CPU per pipeline statement, measured on the database backend itself (not wall time), so that it
 * holds on a busy machine: a scratch database (gkh_dbperf_<pid>) with the real migrations, one pooled
 * connection, and the real route code (Intake.processBytes, Batcher.pack, Sender.markSent, Poller.apply)
 * driven over generated files without broker or SMEV. Every store.query is timed by the backend's on-CPU
 * time (/proc/<backend pid>/schedstat, ns) and the WAL written meanwhile (pg_current_wal_insert_lsn: cluster-wide, so
 * other databases' writes add noise); a phase total
 * includes BEGIN/COMMIT. Needs the server on this machine and permission to read its /proc entries.
 *
 *   node --import=tsx bench/db-cpu.ts [--files 6] [--rounds 1] [--url postgres://postgres@127.0.0.1:5432/postgres] [--json] [--keep] [--sql '<DDL after the migrations>']
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../connectors/log.ts';
import { openStore, dropDatabase, type Store } from '../connectors/store/db.ts';
import { storePayeeVersion } from '../connectors/store/payees.ts';
import { parsePayeesCsv, PayeeIndex } from '../transformers/classify/payees.ts';
import { loadCsvLayouts } from '../gateway/bus.ts';
import { classifyConfig } from '../gateway/classify-cli.ts';
import { Intake } from '../routes/intake.ts';
import { Batcher, chunkIds } from '../routes/batcher.ts';
import { Sender } from '../routes/sender.ts';
import { Poller } from '../routes/poller.ts';
import { ufebsPacket, csvRegistry } from '../gateway/bench.ts';
import { buildNotificationPacket } from '../transformers/gis/notification.ts';
import { buildImportResult } from '../transformers/gis/result.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const FILES = Number(arg('files', '6'));
const ROUNDS = Number(arg('rounds', '1'));
const JSON_OUT = process.argv.includes('--json');
const KEEP = process.argv.includes('--keep');
const root = resolve(import.meta.dirname, '..');
const admin = new URL(arg('url', 'postgres://postgres@127.0.0.1:5432/postgres'));
admin.pathname = `/gkh_dbperf_${process.pid}`;
const url = admin.toString();
/** extra DDL applied after the migrations (to try a schema variant before writing a migration) */
const EXTRA_SQL = arg('sql', '');

const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

interface Acc { calls: number; ns: number; wal: number }
const stats = new Map<string, Acc>();
const add = (label: string, ns: number, wal: number) => {
  const a = stats.get(label) ?? { calls: 0, ns: 0, wal: 0 };
  a.calls++;
  a.ns += ns;
  a.wal += wal;
  stats.set(label, a);
};

/** A short stable label for a statement: its first words. */
function labelOf(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > 90 ? s.slice(0, 90) + '…' : s;
}

let phase = 'setup';
async function main(): Promise<void> {
  const log = createLogger({ level: 'error' });
  const config = loadConfig(resolve(root, 'config/bus.yaml')).config;
  const store: Store = await openStore(url, { pool: 1 });
  if (EXTRA_SQL) await store.sequelize.query(EXTRA_SQL);
  const [{ pid }] = await store.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const orig = store.query.bind(store);
  const lsn = async (tx: unknown) =>
    Number((await orig<{ b: string }>(`SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint::text AS b`, [], tx as never))[0].b);
  store.query = (async (sql: string, bind?: unknown, tx?: unknown) => {
    const w0 = await lsn(tx);
    const c0 = cpuNs(pid);
    const r = await orig(sql, bind as never, tx as never);
    const c1 = cpuNs(pid);
    add(`${phase}: ${labelOf(sql)}`, c1 - c0, (await lsn(tx)) - w0);
    return r;
  }) as Store['query'];
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    // the phase total: backend CPU including BEGIN/COMMIT, minus nothing (the lsn probes are counted too; small)
    const c0 = cpuNs(pid);
    const r = await fn();
    add(`${name} (whole call, incl. BEGIN/COMMIT and probes)`, cpuNs(pid) - c0, 0);
    return r;
  };

  const payeesFile = resolve(root, 'examples/payees.csv');
  const { records } = parsePayeesCsv(readFileSync(payeesFile), payeesFile);
  const v = await storePayeeVersion(store, payeesFile, records, 0);
  const registry = { index: new PayeeIndex(records), versionId: v.id };
  const layouts = loadCsvLayouts(resolve(root, config.csvLayouts));
  const intake = new Intake({ store, layouts: () => layouts, registry: () => registry, classify: classifyConfig(config), bankBic: config.gis.bankBic, log });
  const batcher = new Batcher({ store, log, maxItems: 500, maxWaitMs: 500, publishPacket: async () => {} });
  const sender = new Sender({ store, log, client: undefined as never, informationSystemId: uuidv4(), organizationId: uuidv4(), validate: async () => ({ valid: true, errors: [] }), onSent: () => {} });
  const poller = new Poller({ store, log, client: undefined as never, minMs: 50, maxMs: 500, publishPacket: async () => {}, publishPayments: async () => {} });
  const markSent = (sender as unknown as { markSent(id: number, note: string): Promise<void> }).markSent.bind(sender);
  const apply = (poller as unknown as { apply(r: unknown): Promise<unknown> }).apply.bind(poller);

  let payments = 0;
  let reportableTotal = 0;
  let k = 0;
  let sample: string | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    for (let f = 0; f < FILES; f++) {
      k++;
      const bytes = k % 5 === 0 ? csvRegistry(10_000, k) : ufebsPacket(10_000, payments).bytes;
      const name = `dbperf_${k}.${k % 5 === 0 ? 'txt' : 'xml'}`;
      phase = 'intake';
      const o = await timed('intake file', () => intake.processBytes(bytes, name));
      if (o.status !== 'ACCEPTED') throw new Error(`${name}: ${o.status} ${o.reason}`);
      payments += o.payments;
      reportableTotal += o.reportableIds.length;
      const packets: { id: number; messageId: string }[] = [];
      phase = 'pack';
      for (const ids of chunkIds(o.reportableIds, 500)) {
        const p = await timed('pack 500', () => batcher.pack(ids));
        if (p) packets.push(p);
      }
      for (const p of packets) {
        phase = 'send';
        // what the sender reads to build the packet, then the SendRequest record (~600 KB signed XML), then SENT
        const rows = await store.query<Record<string, unknown>>(
          `SELECT id, transport_id, order_id, payment_date, amount_kop, purpose, doc_no, recipient, payment_document_id, service_id, els,
                  account_number, period_year, period_month FROM payments WHERE packet_id = $1 ORDER BY id`, [p.id]);
        const xml = envelope(p.messageId, buildNotificationPacket({
          informationSystemId: uuidv4(), organizationId: uuidv4(),
          items: rows.map((r) => ({
            transportId: String(r.transport_id), orderId: String(r.order_id), orderDate: String(r.payment_date), amountKop: Number(r.amount_kop),
            purpose: (r.purpose as string) || undefined, paymentDocumentNumber: (r.doc_no as string) ?? undefined, recipient: r.recipient as never,
            paymentDocumentId: (r.payment_document_id as string) ?? undefined, serviceId: (r.service_id as string) ?? undefined,
            els: (r.els as string) ?? undefined, accountNumber: (r.account_number as string) ?? undefined,
            period: r.period_year ? { year: Number(r.period_year), month: Number(r.period_month) } : undefined,
          })),
        }));
        sample ??= xml;
        // the statement of connectors/smev3/client.ts
        await timed('smev_messages insert (SendRequest)', () => store.query(
          `INSERT INTO smev_messages (direction, operation, message_id, packet_id, http_status, status, error, request_xml, response_xml, duration_ms)
           VALUES ('out', $1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          ['SendRequest', p.messageId, p.id, 200, 'ok', null, xml, SEND_RESPONSE, 120]));
        await timed('markSent 500', () => markSent(p.id, 'SMEV status requestIsQueued'));
        phase = 'results';
        const result = buildImportResult({
          results: rows.map((r, i) => i % 50 === 7
            ? { transportId: String(r.transport_id), errors: [{ code: 'INT002000', description: 'Не найден платёжный документ' }] }
            : { transportId: String(r.transport_id), success: { id: uuidv4(), updateDate: '2025-11-06T10:00:00+03:00' } }),
        });
        await timed('apply results 500', () => apply({ kind: 'GetResponseResponse', empty: false, messageId: uuidv4(), originalMessageId: p.messageId, content: result }));
      }
    }
  }
  phase = 'after';
  const [hot] = await store.query<Record<string, number>>(
    `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_relation_size('payments') AS heap, pg_indexes_size('payments') AS indexes,
            pg_total_relation_size('payment_events') AS events, pg_total_relation_size('smev_messages') AS smev
     FROM pg_stat_user_tables WHERE relname = 'payments'`);
  await timed('VACUUM payments, payment_events', async () => {
    await store.sequelize.query('VACUUM payments');
    await store.sequelize.query('VACUUM payment_events');
  });
  const [again] = await store.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  if (again.pid !== pid) throw new Error('the pooled connection changed during the run: figures are not valid');
  const [comp] = await store.query<Record<string, unknown>>(
    `SELECT avg(octet_length(request_xml))::int AS raw, avg(pg_column_size(request_xml))::int AS stored,
            (SELECT attcompression FROM pg_attribute WHERE attrelid = 'smev_messages'::regclass AND attname = 'request_xml') AS compression
     FROM smev_messages`);
  await store.close();
  if (!KEEP) await dropDatabase(url);

  const rows = [...stats.entries()].map(([label, a]) => ({
    label, calls: a.calls, msPerCall: +(a.ns / a.calls / 1e6).toFixed(3), usPerPayment: +(a.ns / reportableTotal / 1e3).toFixed(2),
    clusterWalBytesPerCall: Math.round(a.wal / a.calls),
  }));
  const totalNs = [...stats.entries()].filter(([l]) => l.includes('whole call') && !l.startsWith('VACUUM')).reduce((s, [, a]) => s + a.ns, 0);
  const res = { payments, reportable: reportableTotal, usPerReportablePayment: +(totalNs / reportableTotal / 1e3).toFixed(1), table: hot, smevXml: comp, rows };
  if (JSON_OUT) {
    console.log(JSON.stringify(res, null, 2));
    return;
  }
  console.log(`${payments} payments, ${reportableTotal} reportable; backend CPU per reportable payment (all phases): ${res.usPerReportablePayment} µs`);
  console.log(`payments: ${JSON.stringify(hot)}; smev request_xml ${JSON.stringify(comp)}; sample SendRequest ${sample?.length} chars`);
  for (const r of rows) console.log(`${String(r.calls).padStart(5)}  ${r.msPerCall.toFixed(3).padStart(9)} ms/call  ${r.usPerPayment.toFixed(2).padStart(8)} µs/payment  ${String(r.clusterWalBytesPerCall).padStart(9)} WAL B/call (cluster)  ${r.label}`);
}

const SEND_RESPONSE = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:SendRequestResponse xmlns:ns2="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.2"><ns2:MessageMetadata><ns2:MessageId>x</ns2:MessageId><ns2:MessageType>REQUEST</ns2:MessageType><ns2:SendingTimestamp>2025-11-06T10:00:00+03:00</ns2:SendingTimestamp><ns2:Status>requestIsQueued</ns2:Status></ns2:MessageMetadata><ns2:SMEVSignature>${'QUJD'.repeat(700)}</ns2:SMEVSignature></ns2:SendRequestResponse></soap:Body></soap:Envelope>`;

/** A SendRequest-shaped envelope around the ГИС document (the signature parts are random base64, as a real one's). */
function envelope(messageId: string, content: string): string {
  const b64 = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(Math.random() * 256))).toString('base64');
  return `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
    `<ns1:SendRequestRequest xmlns:ns1="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.2"><ns1:SenderProvidedRequestData Id="SIGNED_BY_CONSUMER">` +
    `<ns1:MessageID>${messageId}</ns1:MessageID><ns1:MessagePrimaryContent>${content}</ns1:MessagePrimaryContent></ns1:SenderProvidedRequestData>` +
    `<ns1:CallerInformationSystemSignature><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/><ds:SignatureValue>${b64(64)}</ds:SignatureValue>` +
    `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>${b64(900)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature></ns1:CallerInformationSystemSignature>` +
    `</ns1:SendRequestRequest></soap:Body></soap:Envelope>`;
}

main().catch(async (e) => {
  console.error(e);
  if (!KEEP) await dropDatabase(url).catch(() => {});
  process.exitCode = 1;
});
