import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { UfebsStreamParser, NotStreamableError } from '../transformers/ufebs/stream.ts';
import type { Transaction } from 'sequelize';
import { parseInputFile, sniff } from '../transformers/intake.ts';
import { CsvEncodingRetry, CsvStreamParser, type CsvStreamSummary } from '../transformers/csv/stream.ts';
import { classify, type ClassifyConfig } from '../transformers/classify/classify.ts';
import type { PayeeIndex } from '../transformers/classify/payees.ts';
import type { CsvLayout } from '../transformers/csv/layout.ts';
import { buildNotificationPacket, orderId } from '../transformers/gis/notification.ts';
import { IntakeError, type ParsedFile, type Payment, type RecordProblem } from '../transformers/payment.ts';
import type { Store } from '../connectors/store/db.ts';
import type { Logger } from '../connectors/log.ts';

export interface FileOutcome {
  fileId: number;
  name: string;
  status: 'ACCEPTED' | 'REJECTED' | 'DUPLICATE';
  reason?: string;
  /** payments this file added (duplicates of earlier documents add none) */
  payments: number;
  reportable: number;
  skipped: number;
  recordsRejected: number;
  problems: RecordProblem[];
  /** ids of newly reportable payments, to be published */
  reportableIds: number[];
}

export interface IntakeDeps {
  store: Store;
  layouts: () => CsvLayout[];
  registry: () => { index: PayeeIndex; versionId?: number };
  classify: ClassifyConfig;
  bankBic: string;
  log: Logger;
}

/** The message translator + idempotent receiver of the intake: bytes of one file → rows in PostgreSQL. */
export class Intake {
  constructor(private d: IntakeDeps) {}

  async processBytes(bytes: Buffer, name: string, source = 'inbox'): Promise<FileOutcome> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { store, log } = this.d;
    const flog = log.child({ file: name, sha256: sha256.slice(0, 16) });

    const dup = await this.duplicate(name, sha256, bytes.length, source, flog);
    if (dup) return dup;

    let parsed: ParsedFile;
    const t0 = performance.now();
    try {
      parsed = parseInputFile(bytes, name, this.d.layouts());
    } catch (e) {
      const reason = e instanceof IntakeError ? e.message : `INTERNAL: ${(e as Error).message}`;
      if (!(e instanceof IntakeError)) flog.error('parser failed unexpectedly', { err: e });
      const out = await this.recordRejected(name, sha256, bytes.length, source, reason);
      flog.warn('file rejected', { fileId: out.fileId, reason });
      return out;
    }

    const parseMs = performance.now() - t0;
    const { index, versionId } = this.d.registry();
    const problems = [...parsed.rejected, ...parsed.warnings];
    const outcome = await store.transaction(async (tx) => {
      const [f] = await store.query<{ id: number }>(
        `INSERT INTO files (name, sha256, size, source, status, format, encoding) VALUES ($1, $2, $3, $4, 'RECEIVED', $5, $6) RETURNING id`,
        [name, sha256, bytes.length, source, parsed.format, parsed.encoding], tx);
      const rows = parsed.payments.map((p) => this.toRow(p, f.id, index, versionId, problems));
      const inserted = rows.length ? await insertPayments(store, rows, tx) : [];
      const reportableIds = inserted.filter((r) => r.status === 'REPORTABLE').map((r) => r.id);
      const reportable = inserted.filter((r) => r.status !== 'SKIPPED').length;
      const skipped = inserted.length - reportable;
      await store.query(
        `UPDATE files SET status = 'ACCEPTED', payments_added = $2, reportable = $3, skipped = $4, records_rejected = $5,
                problems = $6::jsonb, finished_at = clock_timestamp() WHERE id = $1`,
        [f.id, inserted.length, reportable, skipped, parsed.rejected.length, JSON.stringify(problems)], tx);
      return { fileId: f.id, payments: inserted.length, reportable, skipped, reportableIds };
    });
    flog.info('file accepted', { fileId: outcome.fileId, format: parsed.format, encoding: parsed.encoding, parsed: parsed.payments.length,
      added: outcome.payments, reportable: outcome.reportable, skipped: outcome.skipped, recordsRejected: parsed.rejected.length,
      bytes: bytes.length, parseMs: Math.round(parseMs), storeMs: Math.round(performance.now() - t0 - parseMs) });
    for (const p of parsed.rejected) flog.warn('record rejected', { fileId: outcome.fileId, code: p.code, location: p.location, ref: p.ref, problem: p.message });
    return { ...outcome, name, status: 'ACCEPTED', recordsRejected: parsed.rejected.length, problems };
  }

  /** The file recorded first with this content (not a DUPLICATE row), if any. */
  async findOriginal(sha256: string): Promise<{ id: number; name: string; status: string; reason: string | null } | undefined> {
    const [r] = await this.d.store.query<{ id: number; name: string; status: string; reason: string | null }>(
      "SELECT id, name, status, reason FROM files WHERE sha256 = $1 AND status <> 'DUPLICATE'", [sha256]);
    return r;
  }

  /**
   * A big file, without reading it whole: pass 1 streams it through the validating parser (UFEBS PacketEPD or
   * a CSV layout, sniffed on the first bytes) and the sha256; pass 2 streams it again and stores its payments
   * in chunks inside ONE transaction, so that no payment of it exists before the whole file passed its
   * structural checks (counts, sums, footers), and none if pass 2 fails or the file changed in between.
   * Returns undefined when the file is not streamable (small UFEBS roots, no CSV layout recognises the head):
   * the caller parses it whole.
   */
  async processFile(path: string, name: string, size: number, source = 'inbox', chunkPayments = 1000): Promise<FileOutcome | undefined> {
    const fh = await open(path, 'r');
    const head = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(head, 0, head.length, 0).finally(() => fh.close());
    if (sniff(head.subarray(0, bytesRead)) === 'UFEBS') {
      return this.streamed(path, name, size, source, chunkPayments, () => new UfebsStreamParser('validate'),
        () => new UfebsStreamParser('emit'));
    }
    const layouts = this.d.layouts();
    return this.streamed(path, name, size, source, chunkPayments,
      (retry) => new CsvStreamParser(layouts, 'validate', retry ? { encoding: retry.encoding } : {}),
      (s) => new CsvStreamParser(layouts, 'emit', { layout: (s as CsvStreamSummary).layout, encoding: (s as CsvStreamSummary).encoding }));
  }

  private async streamed(path: string, name: string, size: number, source: string, chunkPayments: number,
    validator: (retry?: CsvEncodingRetry) => StreamPass, emitter: (s: StreamSummaryLike) => StreamPass): Promise<FileOutcome | undefined> {
    const { store, log } = this.d;
    const t0 = performance.now();
    let problem: string | undefined;
    let summary: StreamSummaryLike | undefined;
    let sha256 = '';
    let retry: CsvEncodingRetry | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const v = validator(retry);
      retry = undefined;
      const hash = createHash('sha256');
      for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
        hash.update(c as Buffer); // the hash needs every byte, also after a problem
        if (problem) continue;
        try {
          v.write(c as Buffer);
        } catch (e) {
          if (e instanceof NotStreamableError) return undefined;
          if (e instanceof CsvEncodingRetry && attempt === 0) retry = e;
          else if (e instanceof CsvEncodingRetry) problem = `ENCODING_MISMATCH at byte 0: ${name}: the encoding cannot be decided while streaming`;
          else if (!(e instanceof IntakeError)) throw e;
          else problem = e.message;
          if (retry) break;
        }
      }
      if (retry) continue; // the head suggested another encoding than the bytes: validate again with that one
      try {
        if (!problem) summary = v.end();
      } catch (e) {
        if (e instanceof NotStreamableError) return undefined;
        if (e instanceof CsvEncodingRetry && attempt === 0) {
          retry = e;
          continue;
        }
        if (e instanceof CsvEncodingRetry) problem = `ENCODING_MISMATCH at byte 0: ${name}: the encoding cannot be decided while streaming`;
        else if (!(e instanceof IntakeError)) throw e;
        else problem = e.message;
      }
      sha256 = hash.digest('hex');
      break;
    }
    const flog = log.child({ file: name, sha256: sha256.slice(0, 16) });
    const dup = await this.duplicate(name, sha256, size, source, flog);
    if (dup) return dup;
    if (problem || !summary) {
      const out = await this.recordRejected(name, sha256, size, source, problem ?? 'INTERNAL: no summary');
      flog.warn('file rejected', { fileId: out.fileId, reason: out.reason });
      return out;
    }
    const parseMs = performance.now() - t0;
    const { index, versionId } = this.d.registry();
    const problems = [...summary.rejected, ...summary.warnings];
    const format = summary.format ?? 'UFEBS';
    const encoding = summary.encoding;
    const outcome = await store.transaction(async (tx) => {
      const [f] = await store.query<{ id: number }>(
        `INSERT INTO files (name, sha256, size, source, status, format, encoding) VALUES ($1, $2, $3, $4, 'RECEIVED', $5, $6) RETURNING id`,
        [name, sha256, size, source, format, encoding], tx);
      const e = emitter(summary);
      const again = createHash('sha256');
      const reportableIds: number[] = [];
      let added = 0;
      let reportable = 0;
      const flush = async () => {
        const rows = e.take().map((p) => this.toRow(p, f.id, index, versionId, problems));
        if (!rows.length) return;
        const inserted = await insertPayments(store, rows, tx);
        added += inserted.length;
        for (const r of inserted) {
          if (r.status === 'REPORTABLE') reportableIds.push(r.id);
          if (r.status !== 'SKIPPED') reportable++;
        }
      };
      for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
        again.update(c as Buffer);
        e.write(c as Buffer);
        if (e.pending >= chunkPayments) await flush();
      }
      e.end();
      await flush();
      if (again.digest('hex') !== sha256) throw new Error('the file changed between the two passes');
      await store.query(
        `UPDATE files SET status = 'ACCEPTED', payments_added = $2, reportable = $3, skipped = $4, records_rejected = $5,
                problems = $6::jsonb, finished_at = clock_timestamp() WHERE id = $1`,
        [f.id, added, reportable, added - reportable, summary.rejected.length, JSON.stringify(problems)], tx);
      return { fileId: f.id, payments: added, reportable, skipped: added - reportable, reportableIds };
    });
    flog.info('file accepted', { fileId: outcome.fileId, format, encoding, parsed: summary.payments,
      added: outcome.payments, reportable: outcome.reportable, skipped: outcome.skipped, recordsRejected: summary.rejected.length,
      bytes: size, streamed: true, parseMs: Math.round(parseMs), storeMs: Math.round(performance.now() - t0 - parseMs) });
    for (const p of summary.rejected) flog.warn('record rejected', { fileId: outcome.fileId, code: p.code, location: p.location, ref: p.ref, problem: p.message });
    return { ...outcome, name, status: 'ACCEPTED', recordsRejected: summary.rejected.length, problems };
  }

  private async duplicate(name: string, sha256: string, size: number, source: string, flog: Logger): Promise<FileOutcome | undefined> {
    const [orig] = await this.d.store.query<{ id: number; name: string }>(
      "SELECT id, name FROM files WHERE sha256 = $1 AND status <> 'DUPLICATE'", [sha256]);
    if (!orig) return undefined;
    const reason = `DUPLICATE_FILE: same content as file #${orig.id} "${orig.name}"`;
    const [row] = await this.d.store.query<{ id: number }>(
      `INSERT INTO files (name, sha256, size, source, status, reason, duplicate_of, finished_at)
       VALUES ($1, $2, $3, $4, 'DUPLICATE', $5, $6, now()) RETURNING id`, [name, sha256, size, source, reason, orig.id]);
    flog.info('duplicate file', { fileId: row.id, duplicateOf: orig.id });
    return { fileId: row.id, name, status: 'DUPLICATE', reason, payments: 0, reportable: 0, skipped: 0, recordsRejected: 0, problems: [], reportableIds: [] };
  }

  async recordRejected(name: string, sha256: string, size: number, source: string, reason: string): Promise<FileOutcome> {
    const [row] = await this.d.store.query<{ id: number }>(
      `INSERT INTO files (name, sha256, size, source, status, reason, finished_at) VALUES ($1, $2, $3, $4, 'REJECTED', $5, now())
       ON CONFLICT (sha256) WHERE status <> 'DUPLICATE' DO UPDATE SET reason = EXCLUDED.reason RETURNING id`,
      [name, sha256, size, source, reason]);
    return { fileId: row.id, name, status: 'REJECTED', reason, payments: 0, reportable: 0, skipped: 0, recordsRejected: 0, problems: [], reportableIds: [] };
  }

  private toRow(p: Payment, fileId: number, index: PayeeIndex, versionId: number | undefined, problems: RecordProblem[]): PaymentRow {
    const c = classify(p, index, this.d.classify);
    for (const w of c.warnings) problems.push({ ...w, ref: w.ref ?? p.ref });
    const reportable = c.decision === 'REPORTABLE';
    const reg = c.payee;
    const recipient = reportable
      ? {
          inn: reg?.inn ?? p.payee.inn ?? '',
          kpp: reg?.kpp ?? (p.payee.kpp && p.payee.kpp !== '0' ? p.payee.kpp : undefined),
          name: reg?.name ?? p.payee.name ?? '',
          bankName: reg?.bankName ?? p.payee.bankName ?? `БИК ${p.payee.bic ?? ''}`,
          // the money went to the payment's own account (an INN-fallback match may name another account of the payee)
          bic: p.payee.bic || reg?.bic || '',
          account: p.payee.account || reg?.account || '',
          corrAccount: c.rules.includes('registry-match') ? reg?.corrAccount ?? p.payee.corrAccount : p.payee.corrAccount ?? reg?.corrAccount,
        }
      : null;
    const order = reportable ? orderId({ bic: this.d.bankBic, date: p.date, sourceKey: p.sourceKey }) : null;
    let status = reportable ? 'REPORTABLE' : 'SKIPPED';
    let reason = c.reason;
    if (reportable) {
      // the notification must be buildable, or the payment is held as INVALID with the reason (never sent)
      const problem = notificationProblem(p, c, recipient!, order!);
      if (problem) {
        status = 'INVALID';
        reason = `${c.reason}; but it cannot be reported: ${problem}`;
        problems.push({ code: 'INVALID_FOR_GIS', location: p.location, ref: p.ref, message: problem });
      }
    }
    return {
      source_key: p.sourceKey, file_id: fileId, ref: p.ref, location: p.location, kind: p.kind,
      amount_kop: p.amountKop, payment_date: p.date, doc_no: p.docNo ?? null, purpose: p.purpose, payment_id: p.paymentId ?? null,
      payer: p.payer, payee: p.payee,
      status, reason, rules: c.rules,
      payment_document_id: c.paymentDocumentId ?? null, service_id: c.serviceId ?? null, els: c.els ?? null,
      account_number: c.accountNumber ?? null, period_year: c.period?.year ?? null, period_month: c.period?.month ?? null,
      payee_guid: reg?.guid ?? null, payee_version_id: reg ? versionId ?? null : null,
      recipient,
      order_id: order,
    };
  }
}

const PROBE_ID = '00000000-0000-4000-8000-000000000000';

/** Why a notification for this payment could not be built, or undefined when it can. */
function notificationProblem(p: Payment, c: ReturnType<typeof classify>, recipient: NonNullable<PaymentRow['recipient']>, order: string): string | undefined {
  const r = recipient as { inn: string; name: string; bic: string; account: string };
  const missing = (['inn', 'name', 'bic', 'account'] as const).filter((k) => !r[k]);
  if (missing.length) return `payee ${missing.map((k) => ({ inn: 'INN', name: 'name', bic: 'BIC', account: 'account' })[k]).join(', ')} unknown (not in the payee registry and not in the payment)`;
  try {
    buildNotificationPacket({
      informationSystemId: PROBE_ID, organizationId: PROBE_ID,
      items: [{
        transportId: PROBE_ID, orderId: order, orderDate: p.date, amountKop: p.amountKop, purpose: p.purpose || undefined,
        paymentDocumentNumber: p.docNo, recipient: recipient as never, paymentDocumentId: c.paymentDocumentId, serviceId: c.serviceId,
        els: c.els, accountNumber: c.accountNumber, period: c.period,
      }],
    });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** One pass of a streaming parser (UfebsStreamParser, CsvStreamParser). */
interface StreamSummaryLike {
  format?: string;
  encoding: string;
  payments: number;
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}
interface StreamPass {
  write(b: Buffer): void;
  end(): StreamSummaryLike;
  readonly pending: number;
  take(): Payment[];
}

interface PaymentRow {
  source_key: string; file_id: number; ref: string; location: string; kind: string; amount_kop: number; payment_date: string;
  doc_no: string | null; purpose: string; payment_id: string | null; payer: unknown; payee: unknown; status: string; reason: string;
  rules: string[]; payment_document_id: string | null; service_id: string | null; els: string | null; account_number: string | null;
  period_year: number | null; period_month: number | null; payee_guid: string | null; payee_version_id: number | null;
  recipient: unknown; order_id: string | null;
}

/** Inserts new payments (a known bank document key adds nothing) and their first two history events. */
async function insertPayments(store: Store, rows: PaymentRow[], tx: Transaction): Promise<{ id: number; status: string }[]> {
  const inserted = await store.query<{ id: number; status: string; reason: string; rules: string[]; payee_guid: string | null }>(
    `INSERT INTO payments (source_key, file_id, ref, location, kind, amount_kop, payment_date, doc_no, purpose, payment_id, payer, payee,
        status, reason, rules, payment_document_id, service_id, els, account_number, period_year, period_month, payee_guid,
        payee_version_id, recipient, order_id)
     SELECT x.source_key, x.file_id, x.ref, x.location, x.kind, x.amount_kop, x.payment_date, x.doc_no, x.purpose, x.payment_id, x.payer, x.payee,
        x.status, x.reason, x.rules, x.payment_document_id, x.service_id, x.els, x.account_number, x.period_year, x.period_month, x.payee_guid,
        x.payee_version_id, x.recipient, x.order_id
     FROM json_to_recordset($1::json) AS x(source_key text, file_id bigint, ref text, location text, kind text, amount_kop bigint,
        payment_date date, doc_no text, purpose text, payment_id text, payer jsonb, payee jsonb, status text, reason text, rules jsonb,
        payment_document_id text, service_id text, els text, account_number text, period_year smallint, period_month smallint,
        payee_guid text, payee_version_id bigint, recipient jsonb, order_id text)
     ON CONFLICT (source_key) DO NOTHING
     RETURNING id, status, reason, rules, payee_guid, payee_version_id, payment_document_id, service_id, els, account_number, period_year, period_month`,
    [JSON.stringify(rows)], tx);
  if (inserted.length) {
    await store.query(
      `INSERT INTO payment_events (payment_id, status, detail)
       SELECT id, 'RECEIVED', jsonb_build_object('fileId', $2::bigint) FROM unnest($1::bigint[]) AS id
       UNION ALL
       SELECT x.id, x.status, jsonb_strip_nulls(jsonb_build_object('reason', x.reason, 'rules', x.rules,
         'registry', CASE WHEN x.payee_guid IS NOT NULL THEN jsonb_build_object('guid', x.payee_guid, 'versionId', x.payee_version_id) END,
         'identifiers', NULLIF(jsonb_strip_nulls(jsonb_build_object('paymentDocumentId', x.payment_document_id, 'serviceId', x.service_id, 'els', x.els,
           'accountNumber', x.account_number, 'period', CASE WHEN x.period_year IS NOT NULL THEN x.period_year || '-' || lpad(x.period_month::text, 2, '0') END)), '{}'::jsonb)))
       FROM json_to_recordset($3::json) AS x(id bigint, status text, reason text, rules jsonb, payee_guid text, payee_version_id bigint,
         payment_document_id text, service_id text, els text, account_number text, period_year int, period_month int)`,
      [inserted.map((r) => r.id), rows[0].file_id, JSON.stringify(inserted)], tx);
  }
  return inserted;
}
