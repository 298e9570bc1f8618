/**
 * The chaos invariant checker: compares what was dropped into the inbox with the outcome.
 *
 * The input side is computed from the workload alone (the rows the scenario wrote, their expected kind and
 * their order-id derived from the bank BIC, date and source key), never from the bus's tables. The outcome
 * side reads PostgreSQL, the simulator's ГИС (acceptances per order-id), RabbitMQ queue depths and the folders.
 *
 *  - lost:       a reportable input payment not ACCEPTED in PostgreSQL, or never accepted by ГИС;
 *                a skipped one not SKIPPED; an input payment with no row at all
 *  - duplicates: an order-id ГИС accepted more than once, an order-id ГИС accepted that no input has,
 *                an input payment stored twice
 *  - in flight:  payments REPORTABLE/PACKED/SENT, packets BUILT/SENT, messages in work or retry queues,
 *                unacknowledged simulator responses, files left in the inbox or processing/
 */
import { readdirSync } from 'node:fs';
import { orderId } from '../../transformers/gis/notification.ts';
import { ChaosEnv, queueDepths } from './env.ts';

export const BANK_BIC = '044599101';
const LAYOUT = 'C_agent_header_row';
const HEADER = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';

export interface InputPayment {
  op: string;
  amountKop: number;
  expect: 'ACCEPTED' | 'SKIPPED';
  sourceKey: string;
  orderId?: string;
}

/** A CSV file of layout C (UTF-8 with BOM): `n` reportable payments and one that is not a ЖКУ payment. */
export function makeFile(tag: string, n: number, opts: { skipped?: boolean } = {}): { content: string; inputs: InputPayment[] } {
  const inputs: InputPayment[] = [];
  let body = HEADER;
  for (let i = 1; i <= n; i++) {
    const op = `${tag}-${String(i).padStart(5, '0')}`;
    const kop = 10_000 + ((i * 7919) % 90_000);
    const sourceKey = `CSV:${LAYOUT}:9909630905:${op}`;
    body += `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;"Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025";${rub(kop)};0,00\r\n`;
    inputs.push({ op, amountKop: kop, expect: 'ACCEPTED', sourceKey, orderId: orderId({ bic: BANK_BIC, date: '2025-11-06', sourceKey }) });
  }
  if (opts.skipped !== false) {
    const op = `${tag}-S`;
    body += `06.11.2025;10:16:40;${op};Соколов Н.В.;9909626909;044599303;40702810900030005050;Оплата услуг связи по договору № 7781;650,00;6,50\r\n`;
    inputs.push({ op, amountKop: 65_000, expect: 'SKIPPED', sourceKey: `CSV:${LAYOUT}:9909626909:${op}` });
  }
  return { content: body, inputs };
}

const rub = (kop: number) => `${Math.floor(kop / 100)},${String(kop % 100).padStart(2, '0')}`;

export interface Verdict {
  lost: number;
  duplicates: number;
  inFlight: number;
  problems: string[];
  accepted: number;
}

/** True when every input has reached its expected final state and nothing is waiting any more. */
export async function settled(env: ChaosEnv, inputs: InputPayment[]): Promise<boolean> {
  const v = await check(env, inputs, { expectParked: 0, quiet: true });
  return v.lost === 0 && v.inFlight === 0;
}

export async function check(env: ChaosEnv, inputs: InputPayment[], opts: { expectParked?: number; quiet?: boolean } = {}): Promise<Verdict> {
  const problems: string[] = [];
  let lost = 0, duplicates = 0, inFlight = 0;
  const rows = await env.query<{ source_key: string; status: string; order_id: string | null; amount_kop: number | string }>(
    'SELECT source_key, status, order_id, amount_kop FROM payments');
  const byKey = new Map<string, typeof rows>();
  for (const r of rows) byKey.set(r.source_key, [...(byKey.get(r.source_key) ?? []), r]);
  const accepted = env.sim.gis.accepted;
  const wanted = new Set<string>();
  for (const i of inputs) {
    const got = byKey.get(i.sourceKey) ?? [];
    if (got.length === 0) { lost++; problems.push(`${i.op}: no payment row`); continue; }
    if (got.length > 1) { duplicates++; problems.push(`${i.op}: stored ${got.length} times`); }
    const p = got[0]!;
    if (Number(p.amount_kop) !== i.amountKop) problems.push(`${i.op}: amount ${p.amount_kop} kop, dropped ${i.amountKop}`);
    if (i.expect === 'SKIPPED') {
      if (p.status !== 'SKIPPED') { lost++; problems.push(`${i.op}: ${p.status}, expected SKIPPED`); }
      continue;
    }
    wanted.add(i.orderId!);
    if (p.order_id !== i.orderId) problems.push(`${i.op}: order-id ${p.order_id}, expected ${i.orderId}`);
    const times = accepted.get(i.orderId!)?.times ?? 0;
    if (p.status !== 'ACCEPTED' || times === 0) {
      lost++;
      if (lost <= 3) problems.push(`${i.op}: status ${p.status}, accepted by ГИС ${times} time(s)`);
    }
    if (times > 1) { duplicates++; problems.push(`${i.op}: order-id ${i.orderId} accepted by ГИС ${times} times`); }
  }
  for (const [oid, a] of accepted) if (!wanted.has(oid)) { duplicates++; problems.push(`ГИС accepted order-id ${oid} that no input has (${a.times}x)`); }

  const [pf] = await env.query<{ n: number }>(`SELECT count(*)::int AS n FROM payments WHERE status IN ('RECEIVED', 'REPORTABLE', 'PACKED', 'SENT')`);
  const [kf] = await env.query<{ n: number }>(`SELECT count(*)::int AS n FROM packets WHERE status IN ('BUILT', 'SENT')`);
  const [parkedPk] = await env.query<{ n: number }>(`SELECT count(*)::int AS n FROM packets WHERE status = 'PARKED'`);
  if (pf!.n) { inFlight += pf!.n; problems.push(`${pf!.n} payment(s) still in flight`); }
  if (kf!.n) { inFlight += kf!.n; problems.push(`${kf!.n} packet(s) still BUILT/SENT`); }
  if (parkedPk!.n) problems.push(`${parkedPk!.n} packet(s) PARKED`);
  const depths = await queueDepths(env.topology);
  let parked = 0;
  for (const q of env.topology.queues) {
    const n = depths[q.name] ?? 0;
    if (q.role === 'parked') parked += n;
    else if (n) { inFlight += n; problems.push(`queue ${q.name}: ${n} message(s)`); }
  }
  if (parked !== (opts.expectParked ?? 0)) problems.push(`parked queues hold ${parked} message(s), expected ${opts.expectParked ?? 0}`);
  const pending = env.sim.pending();
  if (pending) { inFlight += pending; problems.push(`${pending} simulator response(s) not acknowledged`); }
  if (lost || inFlight) {
    const st = await env.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM packets GROUP BY 1 ORDER BY 1');
    problems.push(`packets: ${st.map((r) => `${r.status}=${r.n}`).join(' ')}; simulator ${JSON.stringify(env.sim.stats)}`);
  }
  for (const [what, d] of [['inbox', env.inbox], ['processing', env.processing]] as const) {
    const left = readdirSync(d);
    if (left.length) { inFlight += left.length; problems.push(`${what}/ still holds ${left.join(', ')}`); }
  }
  return { lost, duplicates, inFlight, problems, accepted: accepted.size };
}
