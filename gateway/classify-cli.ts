/**
 * `gkh-bus classify <file>… [--payees <csv>] [--json]`: the selection decision for every payment of UFEBS/CSV files,
 * against the current registry version (database of the configuration) or a registry CSV; nothing is stored or sent.
 * `gkh-bus payees refresh [--wait]`: asks the running bus (admin endpoint) to download the registry from ГИС now.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { BusConfig } from '../config/schema.ts';
import { openStore } from '../connectors/store/db.ts';
import { loadCurrentPayees } from '../connectors/store/payees.ts';
import { classify, type ClassifyConfig } from '../transformers/classify/classify.ts';
import { DEFAULT_IDENTIFIER_CONFIG } from '../transformers/classify/identifiers.ts';
import { parsePayeesCsv, PayeeIndex } from '../transformers/classify/payees.ts';
import { parseInputFile } from '../transformers/intake.ts';
import { IntakeError, type PayeeRecord } from '../transformers/payment.ts';
import { loadCsvLayouts } from './bus.ts';

export const CLASSIFY_HELP = `Usage: gkh-bus classify <file>… [--payees <csv>] [--json] [--config <file>]

Prints, for every payment in the given UFEBS/CSV files, the selection decision (reportable or skipped), the
notification form, the ЖКУ identifiers found and the reason, with the selection settings of the configuration
(selection.mode, markers, accountMarkers, mapLatinLookalikes, innFallback). Nothing is stored or sent.
  --payees <csv>    classify against this registry CSV (layout of examples/payees.csv, or a payees.csv export)
                    instead of the current registry version in the configured database
  --json            one JSON array: { file, index (0-based, in file order), amountKop, decision: "reportable"|"skipped",
                    form: "full"|"short"|null, paymentDocumentId?, serviceId?, els?, accountNumber?,
                    period? ("YYYY-MM"), reason }
  --config <file>   YAML configuration (default config/bus.yaml; or GKH_CONFIG)
Exit status: 0, or 1 when a file could not be read (its error is printed on stderr; the other files are classified).`;

export const PAYEES_HELP = `Usage: gkh-bus payees refresh [--wait] [--config <file>]

Asks the running bus (its admin endpoint, admin.host/port/token of the configuration) to download the payee
registry from ГИС through SMEV now. A new registry version is stored only when every page arrived.
  --wait            wait until the download has finished; print its outcome (exit 1 when it failed)
  --config <file>   YAML configuration (default config/bus.yaml; or GKH_CONFIG)
The scheduled download runs by payees.refresh.schedule (cron); GET /api/v1/payees/refreshes lists the attempts.`;

export interface ClassifyRow {
  file: string;
  index: number;
  amountKop: number;
  decision: 'reportable' | 'skipped';
  form: 'full' | 'short' | null;
  paymentDocumentId?: string;
  serviceId?: string;
  els?: string;
  accountNumber?: string;
  period?: string;
  reason: string;
}

export function classifyConfig(config: BusConfig): ClassifyConfig {
  return {
    mode: config.selection.mode,
    innFallback: config.selection.innFallback,
    identifiers: {
      ...DEFAULT_IDENTIFIER_CONFIG,
      mapLatinLookalikes: config.selection.mapLatinLookalikes,
      ...(config.selection.markers ? { markers: config.selection.markers } : {}),
      ...(config.selection.accountMarkers ? { accountMarkers: config.selection.accountMarkers } : {}),
    },
  };
}

export async function runClassify(config: BusConfig, files: string[], opts: { payees?: string; json: boolean }): Promise<number> {
  let records: PayeeRecord[];
  let against: string;
  if (opts.payees) {
    const r = parsePayeesCsv(readFileSync(opts.payees), opts.payees);
    for (const x of r.rejected) console.error(`${opts.payees} ${x.location}: ${x.message}`);
    records = r.records;
    against = `${opts.payees} (${records.length} records)`;
  } else {
    const store = await openStore(config.database.url, { pool: 1 });
    try {
      const cur = await loadCurrentPayees(store);
      records = cur.records;
      against = cur.version ? `registry version ${cur.version.id} (${cur.records.length} records, ${cur.version.loadedAt})` : 'no registry version (identifiers only)';
    } finally {
      await store.close();
    }
  }
  const index = new PayeeIndex(records);
  const layouts = loadCsvLayouts(config.csvLayouts);
  const cfg = classifyConfig(config);
  const rows: ClassifyRow[] = [];
  let failed = 0;
  for (const f of files) {
    let payments;
    try {
      payments = parseInputFile(readFileSync(f), basename(f), layouts).payments;
    } catch (e) {
      failed++;
      console.error(e instanceof IntakeError ? `${f}: ${e.message}` : `${f}: ${(e as Error).message}`);
      continue;
    }
    payments.forEach((p, i) => {
      const c = classify(p, index, cfg);
      const row: Omit<ClassifyRow, 'reason'> & { reason?: string } = { file: f, index: i, amountKop: p.amountKop, decision: c.decision === 'REPORTABLE' ? 'reportable' : 'skipped', form: c.form };
      if (c.paymentDocumentId) row.paymentDocumentId = c.paymentDocumentId;
      if (c.serviceId) row.serviceId = c.serviceId;
      if (c.els) row.els = c.els;
      if (c.accountNumber) row.accountNumber = c.accountNumber;
      if (c.period) row.period = `${c.period.year}-${String(c.period.month).padStart(2, '0')}`;
      rows.push({ ...row, reason: c.reason });
    });
  }
  if (opts.json) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    console.log(`against ${against}, mode ${cfg.mode}`);
    for (const r of rows) {
      const ids = [r.paymentDocumentId && `ИПД ${r.paymentDocumentId}`, r.serviceId && `ИЖКУ ${r.serviceId}`, r.els && `ЕЛС ${r.els}`,
        r.accountNumber && `л/с ${r.accountNumber}`, r.period && `период ${r.period}`].filter(Boolean).join(', ');
      console.log(`${basename(r.file)}#${r.index}  ${(r.amountKop / 100).toFixed(2).padStart(12)}  ${r.decision.padEnd(10)}  ${(r.form ?? '-').padEnd(5)}  ${ids || '-'}\n    ${r.reason}`);
    }
    const rep = rows.filter((r) => r.decision === 'reportable');
    console.log(`${rows.length} payments: ${rep.length} reportable (${rep.reduce((s, r) => s + r.amountKop, 0)} kop), ${rows.length - rep.length} skipped`);
  }
  return failed ? 1 : 0;
}

export async function runPayeesRefresh(config: BusConfig, wait: boolean): Promise<number> {
  const base = `http://${config.admin.host}:${config.admin.port}`;
  const headers = { authorization: `Bearer ${config.admin.token}` };
  const r = await fetch(`${base}/api/v1/payees/refresh`, { method: 'POST', headers });
  const body = await r.json() as { id?: number; detail?: string; title?: string };
  if (r.status !== 202) {
    console.error(`refresh not started: ${body.title ?? r.status}${body.detail ? `: ${body.detail}` : ''}`);
    return 1;
  }
  console.log(`refresh ${body.id} started`);
  if (!wait) return 0;
  for (;;) {
    await new Promise((res) => setTimeout(res, 1000));
    const x = await (await fetch(`${base}/api/v1/payees/refreshes/${body.id}`, { headers })).json() as { status: string; error?: string; versionId?: number; pages: number; records: number };
    if (x.status === 'running') continue;
    console.log(`refresh ${body.id}: ${x.status}${x.versionId ? `, registry version ${x.versionId}` : ''}, ${x.pages} pages, ${x.records} records${x.error ? `: ${x.error}` : ''}`);
    return x.status === 'failed' ? 1 : 0;
  }
}
