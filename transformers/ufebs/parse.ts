/**
 * UFEBS intake: bytes → ParsedFile (input-formats §2). Pure: no I/O.
 *
 * - encoding decided on bytes (../encoding.ts), saxes fed the decoded TEXT in chunks;
 * - namespace-aware: elements are identified by namespace URI + local name, never by prefix;
 * - DOCTYPE rejected (DTD_FORBIDDEN) — saxes never expands entities, and we stop at the doctype event;
 * - caps: text node 4 KB (envelope Object excepted, it has its own cap), depth 32, attributes per element;
 * - the file is atomic: the tree is built completely and the structural checks (counts, sums) pass before any
 *   payment is created; file-level problems throw IntakeError, record-level ones go to `rejected`.
 */
import { FastXmlError, parseFastXml } from '../smev/fastxml.ts';
import { decodeXml } from '../encoding.ts';
import { IntakeError, type ParsedFile, type Party, type Payment, type RecordProblem, type SourceKind } from '../payment.ts';
import { BIC_RE, checkAccount, isValidInn, isValidIsoDate } from '../classify/checks.ts';

export const ED_NS = 'urn:cbr-ru:ed:v2.0';
export const DSIG_NS = 'urn:cbr-ru:dsig:v1.1';
export const ENV_NS = 'urn:cbr-ru:dsig:env:v1.1';
export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope';

export interface UfebsLimits {
  maxTextChars: number;
  maxDepth: number;
  maxAttributes: number;
  maxEnvelopeBytes: number;
  maxEnvelopeDepth: number;
  /** streamed files: the decoded text goes to saxes in pieces of at most this many characters */
  chunkChars: number;
}

export const DEFAULT_UFEBS_LIMITS: UfebsLimits = {
  maxTextChars: 4096,
  maxDepth: 32,
  maxAttributes: 64,
  maxEnvelopeBytes: 200 * 1024 * 1024,
  maxEnvelopeDepth: 2,
  chunkChars: 64 * 1024,
};

export const PAYMENT_EDS = new Set(['ED101', 'ED103', 'ED104', 'ED105', 'ED108']);
const SKIPPED_EDS = new Set(['ED107', 'ED109', 'ED110', 'ED111']);
export const SUM_RE = /^[1-9]\d{0,17}$/;

export interface XNode {
  uri: string;
  local: string;
  attrs: Record<string, string>;
  children: XNode[];
  text: string;
  line: number;
}

export function loc(line: number, col?: number): string {
  return col === undefined ? `line ${line}` : `line ${line}, column ${col}`;
}

/**
 * Build the element tree from text with the strict fast parser (transformers/smev/fastxml.ts). Throws IntakeError
 * on any syntax problem or cap. An element's line is the line its start tag ends on.
 */
function buildTree(text: string, limits: UfebsLimits, where: string): XNode {
  // Belt and braces: a DOCTYPE anywhere (even inside a comment/CDATA) rejects the file, before parsing.
  const dt = /<!DOCTYPE/i.exec(text);
  if (dt) {
    const before = text.slice(0, dt.index);
    const line = before.split('\n').length;
    throw new IntakeError('DTD_FORBIDDEN', where + loc(line, dt.index - before.lastIndexOf('\n')), 'a DOCTYPE declaration is not allowed (no DTD, no entities)');
  }
  const stack: XNode[] = [];
  let root: XNode | undefined;
  // line numbers: newlines counted once, from the last position asked for (events come in document order)
  let counted = 0;
  let line = 1;
  const lineAt = (offset: number): number => {
    for (let k = text.indexOf('\n', counted); k >= 0 && k < offset; k = text.indexOf('\n', k + 1)) line++;
    counted = Math.max(counted, offset);
    return line;
  };
  const fail = (code: string, msg: string, offset: number): never => {
    const l = lineAt(offset);
    throw new IntakeError(code, where + loc(l, offset - text.lastIndexOf('\n', offset - 1)), msg);
  };
  let at = 0;
  const onText = (t: string) => {
    const cur = stack[stack.length - 1];
    if (!cur) return;
    // indentation between child elements is not text content: a PacketEPD of 10 000 EDs has 10 000 of them
    if (cur.children.length && !/\S/.test(t)) return;
    const cap = cur.uri === ENV_NS && cur.local === 'Object' ? Math.ceil((limits.maxEnvelopeBytes * 4) / 3) + 1024 * 1024 : limits.maxTextChars;
    if (cur.text.length + t.length > cap) fail('NOT_WELL_FORMED', `text of <${cur.local}> exceeds ${cap} characters (cap)`, at);
    cur.text += t;
  };
  try {
    parseFastXml(text, {
      open(name, uri, local, _prefix, attrs, start, tagEnd) {
        at = tagEnd;
        if (stack.length >= limits.maxDepth) fail('NOT_WELL_FORMED', `nesting deeper than ${limits.maxDepth} elements (cap)`, start);
        if (attrs.length > limits.maxAttributes) fail('NOT_WELL_FORMED', `more than ${limits.maxAttributes} attributes on <${name}> (cap)`, start);
        const own: Record<string, string> = {};
        for (const a of attrs) if (a.uri === null && a.prefix === null && a.name !== 'xmlns') own[a.local] = a.value;
        const node: XNode = { uri: uri ?? '', local, attrs: own, children: [], text: '', line: lineAt(tagEnd) };
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(node);
        else root = node;
        stack.push(node);
      },
      close(end) {
        at = end;
        stack.pop();
      },
      text: onText,
      cdata: onText,
      comment() {},
      pi() {},
    });
  } catch (e) {
    if (!(e instanceof FastXmlError)) throw e;
    throw new IntakeError(/DOCTYPE/.test(e.message) ? 'DTD_FORBIDDEN' : 'NOT_WELL_FORMED', where + loc(e.line, e.column), e.message.replace(/^\d+:\d+: /, ''));
  }
  if (!root) throw new IntakeError('NOT_WELL_FORMED', where + loc(lineAt(text.length)), 'no root element');
  return root;
}

const kids = (n: XNode, uri: string, local?: string) => n.children.filter((c) => c.uri === uri && (local === undefined || c.local === local));
const child = (n: XNode | undefined, local: string) => n?.children.find((c) => c.uri === ED_NS && c.local === local);
const childText = (n: XNode | undefined, local: string) => {
  const c = child(n, local);
  return c ? c.text.trim() : undefined;
};

export function bigSum(values: { raw: string | undefined; where: string }[], what: string, where: string): bigint {
  let s = 0n;
  for (const v of values) {
    if (v.raw === undefined || !/^\d{1,19}$/.test(v.raw)) {
      throw new IntakeError('SUM_MISMATCH', where, `${what}: ${v.where} has Sum "${v.raw ?? ''}" that is not an integer number of kopecks, the total cannot be reconciled`);
    }
    s += BigInt(v.raw);
  }
  return s;
}

export interface Ctx {
  where: string;
  container: string; // "PacketEPD/" or ""
  payments: Payment[];
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}

function party(n: XNode | undefined): Party & { address?: string } {
  if (!n) return {};
  const bank = child(n, 'Bank');
  let name = childText(n, 'Name');
  let address: string | undefined;
  if (name && name.includes('//')) {
    const parts = name.split('//');
    name = parts[0]!.trim();
    address = parts.slice(1).filter((p) => p.trim()).join(', ').trim() || undefined;
  }
  const p: Party & { address?: string } = {};
  if (name) p.name = name;
  if (n.attrs.INN) p.inn = n.attrs.INN;
  if (n.attrs.KPP) p.kpp = n.attrs.KPP;
  if (n.attrs.PersonalAcc) p.account = n.attrs.PersonalAcc;
  if (bank?.attrs.BIC) p.bic = bank.attrs.BIC;
  if (bank?.attrs.CorrespAcc) p.corrAccount = bank.attrs.CorrespAcc;
  if (address) p.address = address;
  return p;
}

function stripAddress(p: Party & { address?: string }): Party {
  const { address: _a, ...rest } = p;
  return rest;
}

/** Record-level checks shared by an ED and its ED108 rows. Returns the broken rules (first one's code wins). */
function checkPayee(ed: XNode): { code: string; rule: string }[] {
  const out: { code: string; rule: string }[] = [];
  const payee = child(ed, 'Payee');
  if (!payee) return [{ code: 'INVALID_RECORD', rule: 'Payee is missing' }];
  const bic = child(payee, 'Bank')?.attrs.BIC;
  if (!bic || !BIC_RE.test(bic)) out.push({ code: 'INVALID_ACCOUNT', rule: `payee BIC "${bic ?? ''}" must be 9 digits` });
  else {
    const acc = payee.attrs.PersonalAcc;
    if (acc !== undefined) {
      const r = checkAccount(acc, bic, 'client');
      if (!r.ok) out.push({ code: 'INVALID_ACCOUNT', rule: `payee ${r.reason}` });
    }
    const corr = child(payee, 'Bank')?.attrs.CorrespAcc;
    if (corr !== undefined) {
      const r = checkAccount(corr, bic, 'correspondent');
      if (!r.ok) out.push({ code: 'INVALID_ACCOUNT', rule: `payee correspondent ${r.reason}` });
    }
  }
  const inn = payee.attrs.INN;
  if (inn !== undefined && inn !== '0' && !isValidInn(inn)) out.push({ code: 'INVALID_INN', rule: `payee INN "${inn}" fails the check digits (10 or 12 digits)` });
  return out;
}

function payerWarnings(ed: XNode, location: string, ref: string, ctx: Ctx): void {
  const payer = child(ed, 'Payer');
  const bic = child(payer, 'Bank')?.attrs.BIC;
  const acc = payer?.attrs.PersonalAcc;
  if (payer && bic && acc && BIC_RE.test(bic)) {
    const r = checkAccount(acc, bic, 'client');
    if (!r.ok) ctx.warnings.push({ code: 'INVALID_ACCOUNT', location, ref, message: `payer ${r.reason} (logged only)` });
  }
}

function checkDates(n: XNode, names: string[]): { code: string; rule: string }[] {
  const out: { code: string; rule: string }[] = [];
  for (const a of names) {
    const v = n.attrs[a];
    if (v !== undefined && !isValidIsoDate(v)) out.push({ code: 'INVALID_DATE', rule: `${a} "${v}" is not a valid YYYY-MM-DD date` });
  }
  return out;
}

function checkSum(raw: string | undefined, what: string): { code: string; rule: string }[] {
  if (raw === undefined || !SUM_RE.test(raw) || Number(raw) > Number.MAX_SAFE_INTEGER) {
    return [{ code: 'INVALID_SUM', rule: `${what} "${raw ?? ''}" must match ^[1-9]\\d{0,17}$ (kopecks) and be a safe integer` }];
  }
  return [];
}

function reject(ctx: Ctx, location: string, ref: string, problems: { code: string; rule: string }[]): void {
  ctx.rejected.push({ code: problems[0]!.code, location, ref, message: problems.map((p) => p.rule).join('; ') });
}

export function processEd(ed: XNode, ctx: Ctx): void {
  const kind = ed.local as SourceKind;
  const a = ed.attrs;
  const location = `${ctx.where}${ctx.container}${ed.local}[EDNo=${a.EDNo ?? '?'}] (line ${ed.line})`;
  const ref = `${ed.local}/${a.EDNo ?? '?'}`;
  const identity: { code: string; rule: string }[] = [];
  if (!a.EDNo || !/^[1-9]\d{0,8}$/.test(a.EDNo)) identity.push({ code: 'INVALID_RECORD', rule: `EDNo "${a.EDNo ?? ''}" must be an integer 1..999999999 without leading zeros` });
  if (!a.EDDate || !isValidIsoDate(a.EDDate)) identity.push({ code: 'INVALID_DATE', rule: `EDDate "${a.EDDate ?? ''}" is not a valid YYYY-MM-DD date` });
  if (!a.EDAuthor || !/^\d{10}$/.test(a.EDAuthor)) identity.push({ code: 'INVALID_RECORD', rule: `EDAuthor "${a.EDAuthor ?? ''}" must be 10 digits` });
  const edProblems = [
    ...identity,
    ...checkPayee(ed),
    ...checkDates(ed, ['ReceiptDate', 'ChargeOffDate', 'ReqSettlementDate', 'FileDate']),
    ...checkDates(child(ed, 'AccDoc') ?? ed, child(ed, 'AccDoc') ? ['AccDocDate'] : []),
  ];
  const payerFull = party(child(ed, 'Payer'));
  const payee = stripAddress(party(child(ed, 'Payee')));
  const accDoc = child(ed, 'AccDoc');

  if (kind !== 'ED108') {
    const problems = [...checkSum(a.Sum, 'Sum'), ...edProblems];
    if (problems.length) return reject(ctx, location, ref, problems);
    payerWarnings(ed, location, ref, ctx);
    const p: Payment = {
      sourceKey: `ED:${a.EDAuthor}:${a.EDDate}:${a.EDNo}`,
      ref,
      location,
      kind,
      amountKop: Number(a.Sum),
      date: a.ChargeOffDate ?? a.ReceiptDate ?? a.EDDate!,
      purpose: childText(ed, 'Purpose') ?? '',
      payer: stripAddress(payerFull),
      payee,
      hints: payerFull.address ? { payerAddress: payerFull.address } : {},
    };
    if (accDoc?.attrs.AccDocNo) p.docNo = accDoc.attrs.AccDocNo;
    if (accDoc?.attrs.AccDocDate) p.docDate = accDoc.attrs.AccDocDate;
    if (a.PaymentID !== undefined) p.paymentId = a.PaymentID;
    ctx.payments.push(p);
    return;
  }

  // ED108: one payment per CreditTransferTransactionInfo row; the ED108 itself is the covering transfer.
  const rows = kids(ed, ED_NS, 'CreditTransferTransactionInfo');
  if (rows.length === 0) ctx.warnings.push({ code: 'ED108_NO_ROWS', location, ref, message: 'ED108 without registry rows yields no payment' });
  const seen = new Set<string>();
  for (const row of rows) {
    const r = row.attrs;
    const tid = r.TransactionID;
    const rowLoc = `${ctx.where}${ctx.container}${ed.local}[EDNo=${a.EDNo ?? '?'}]/CreditTransferTransactionInfo[TransactionID=${tid ?? '?'}] (line ${row.line})`;
    const rowRef = `ED108/${a.EDNo ?? '?'}#${tid ?? '?'}`;
    const problems = [...edProblems];
    if (!tid || !/^[1-9]\d{0,4}$/.test(tid)) problems.push({ code: 'INVALID_RECORD', rule: `TransactionID "${tid ?? ''}" must be 1..99999` });
    else if (seen.has(tid)) problems.push({ code: 'INVALID_RECORD', rule: `TransactionID ${tid} is not unique in the ED108` });
    if (tid) seen.add(tid);
    if (!r.TransactionDate || !isValidIsoDate(r.TransactionDate)) problems.push({ code: 'INVALID_DATE', rule: `TransactionDate "${r.TransactionDate ?? ''}" is not a valid YYYY-MM-DD date` });
    problems.push(...checkDates(row, ['PayerDocDate', 'ReqSettlementDate']));
    problems.unshift(...checkSum(r.TransactionSum, 'TransactionSum'));
    if (problems.length) {
      reject(ctx, rowLoc, rowRef, problems);
      continue;
    }
    const pi = row.children.find((c) => c.uri === ED_NS && c.local === 'TransactionPayerInfo');
    const payer: Party = {};
    const pname = childText(pi, 'PersonName') ?? childText(pi, 'TradeName');
    if (pname) payer.name = pname;
    if (pi?.attrs.INN) payer.inn = pi.attrs.INN;
    if (pi?.attrs.Acc) payer.account = pi.attrs.Acc;
    const addr = childText(pi, 'PersonAddress');
    const p: Payment = {
      sourceKey: `ED108:${a.EDAuthor}:${a.EDDate}:${a.EDNo}#${tid}`,
      ref: rowRef,
      location: rowLoc,
      kind: 'ED108',
      amountKop: Number(r.TransactionSum),
      date: r.TransactionDate!,
      purpose: childText(row, 'TransactionPurpose') ?? '',
      payer,
      payee,
      hints: addr ? { payerAddress: addr } : {},
    };
    if (r.PayerDocNo) p.docNo = r.PayerDocNo;
    if (r.PayerDocDate) p.docDate = r.PayerDocDate;
    if (r.PaymentID !== undefined) p.paymentId = r.PaymentID;
    ctx.payments.push(p);
  }
}

/** File-level check of an ED108: Sum = Σ TransactionSum (raw values). */
export function checkEd108Sum(ed: XNode, where: string): void {
  const rows = kids(ed, ED_NS, 'CreditTransferTransactionInfo');
  if (rows.length === 0) return;
  const at = `${where}ED108[EDNo=${ed.attrs.EDNo ?? '?'}] (line ${ed.line})`;
  const declared = bigSum([{ raw: ed.attrs.Sum, where: 'ED108' }], 'ED108 Sum', at);
  const total = bigSum(
    rows.map((r) => ({ raw: r.attrs.TransactionSum, where: `row TransactionID=${r.attrs.TransactionID ?? '?'} (line ${r.line})` })),
    'ED108 rows',
    at,
  );
  if (declared !== total) throw new IntakeError('SUM_MISMATCH', at, `ED108 Sum ${declared} ≠ Σ TransactionSum ${total} over ${rows.length} rows`);
}

function edChildren(n: XNode): XNode[] {
  return n.children.filter((c) => c.uri === ED_NS && /^ED\d{3}$/.test(c.local));
}

function handleDocument(root: XNode, ctx: Ctx, limits: UfebsLimits, envDepth: number): string {
  if (root.uri === SOAP12_NS && root.local === 'Envelope') {
    const body = root.children.find((c) => c.uri === SOAP12_NS && c.local === 'Body');
    const inner = body?.children.find((c) => c.uri === ENV_NS && c.local === 'SigEnvelope');
    if (!inner) throw new IntakeError('UNKNOWN_ROOT', `${ctx.where}line ${root.line}`, 'SOAP envelope without sen:SigEnvelope in its Body');
    return handleDocument(inner, { ...ctx, where: `${ctx.where}Envelope/Body/` }, limits, envDepth);
  }
  if (root.uri === ENV_NS && root.local === 'SigEnvelope') {
    if (envDepth >= limits.maxEnvelopeDepth) throw new IntakeError('UNKNOWN_ROOT', `${ctx.where}line ${root.line}`, `SigEnvelope nested deeper than ${limits.maxEnvelopeDepth}`);
    const obj = root.children.find((c) => c.uri === ENV_NS && c.local === 'Object');
    if (!obj) throw new IntakeError('UNKNOWN_ROOT', `${ctx.where}line ${root.line}`, 'SigEnvelope without Object');
    const b64 = obj.text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new IntakeError('NOT_WELL_FORMED', `${ctx.where}SigEnvelope/Object (line ${obj.line})`, 'Object is not valid base64');
    }
    if ((b64.length / 4) * 3 > limits.maxEnvelopeBytes) {
      throw new IntakeError('NOT_WELL_FORMED', `${ctx.where}SigEnvelope/Object (line ${obj.line})`, `decoded Object would exceed ${limits.maxEnvelopeBytes} bytes (cap)`);
    }
    const inner = Buffer.from(b64, 'base64');
    const parsed = parseLayer(inner, limits, envDepth + 1, `${ctx.where}SigEnvelope/Object: `);
    ctx.payments.push(...parsed.payments);
    ctx.rejected.push(...parsed.rejected);
    ctx.warnings.push(...parsed.warnings);
    return parsed.encoding;
  }
  if (root.uri === ED_NS && root.local === 'PacketEPD') {
    const at = `${ctx.where}PacketEPD (line ${root.line})`;
    const eds = edChildren(root);
    const q = root.attrs.EDQuantity;
    if (q === undefined || !/^[1-9]\d*$/.test(q)) throw new IntakeError('COUNT_MISMATCH', at, `EDQuantity "${q ?? ''}" is not a positive integer`);
    if (Number(q) !== eds.length) throw new IntakeError('COUNT_MISMATCH', at, `EDQuantity ${q} ≠ ${eds.length} ED children`);
    const declared = bigSum([{ raw: root.attrs.Sum, where: 'PacketEPD' }], 'packet Sum', at);
    const total = bigSum(eds.map((e) => ({ raw: e.attrs.Sum, where: `${e.local}[EDNo=${e.attrs.EDNo ?? '?'}] (line ${e.line})` })), 'packet EDs', at);
    if (declared !== total) throw new IntakeError('SUM_MISMATCH', at, `packet Sum ${declared} ≠ Σ ED Sum ${total} over ${eds.length} EDs`);
    for (const e of eds) if (e.local === 'ED108') checkEd108Sum(e, `${ctx.where}PacketEPD/`);
    const inner: Ctx = { ...ctx, container: 'PacketEPD/' };
    for (const e of eds) {
      if (PAYMENT_EDS.has(e.local)) processEd(e, inner);
      else
        ctx.warnings.push({
          code: 'ED_SKIPPED',
          location: `${ctx.where}PacketEPD/${e.local}[EDNo=${e.attrs.EDNo ?? '?'}] (line ${e.line})`,
          message: `${e.local} is not a payment candidate in this flow; skipped`,
        });
    }
    return '';
  }
  if (root.uri === ED_NS && PAYMENT_EDS.has(root.local)) {
    if (root.local === 'ED108') checkEd108Sum(root, ctx.where);
    processEd(root, ctx);
    return '';
  }
  if (root.uri === ED_NS && SKIPPED_EDS.has(root.local)) {
    ctx.warnings.push({ code: 'ED_SKIPPED', location: `${ctx.where}${root.local} (line ${root.line})`, message: `${root.local} is not a payment candidate; skipped` });
    return '';
  }
  throw new IntakeError(
    'UNKNOWN_ROOT',
    `${ctx.where}line ${root.line}`,
    `root {${root.uri}}${root.local} is not SigEnvelope / PacketEPD / ED101|103|104|105|108 in the expected namespaces`,
  );
}

function parseLayer(bytes: Buffer, limits: UfebsLimits, envDepth: number, where: string): ParsedFile {
  let decoded;
  try {
    decoded = decodeXml(bytes);
  } catch (e) {
    if (e instanceof IntakeError && where) throw new IntakeError(e.code, where + e.location, e.message.replace(/^\S+ at .*?: /, ''));
    throw e;
  }
  const root = buildTree(decoded.text, limits, where);
  const ctx: Ctx = { where, container: '', payments: [], rejected: [], warnings: [...decoded.warnings] };
  const innerEnc = handleDocument(root, ctx, limits, envDepth);
  return { format: 'UFEBS', encoding: innerEnc || decoded.encoding, payments: ctx.payments, rejected: ctx.rejected, warnings: ctx.warnings };
}

/** Parse one UFEBS file (PacketEPD, single ED, SigEnvelope, SOAP 1.2 + SigEnvelope). */
export function parseUfebs(bytes: Buffer, fileName: string, limits: Partial<UfebsLimits> = {}): ParsedFile {
  void fileName; // kept for messages by callers; the parser itself is name-agnostic
  return parseLayer(bytes, { ...DEFAULT_UFEBS_LIMITS, ...limits }, 0, '');
}
