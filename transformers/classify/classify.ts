/**
 * Which payments are reportable (gis-zhkh §6): R (payee registry), I (ЖКУ identifiers) or R∪I (default).
 * A лицевой счёт alone never makes a payment reportable; л/с and period are enrichment only.
 */
import type { PayeeRecord, Payment, Period, RecordProblem } from '../payment.ts';
import { DEFAULT_IDENTIFIER_CONFIG, extractIdentifiers, type IdentifierConfig } from './identifiers.ts';
import type { PayeeIndex } from './payees.ts';

export type ClassifyMode = 'R' | 'I' | 'RI';

export interface ClassifyConfig {
  mode: ClassifyMode;
  identifiers: IdentifierConfig;
  /** no (BIC, account) match: a registry payee with the payment's INN (+KPP when given) counts (rule registry-inn) */
  innFallback?: boolean;
  /**
   * ГИС GUIDs of an identifier known from a charges lookup (ВС 95636); only then is the short п.139 form chosen.
   * The lookup itself is not built: without this the form is always the full one.
   */
  lookup?: (ids: { paymentDocumentId?: string; serviceId?: string }) => { paymentDocumentGuid?: string; serviceIdGuid?: string } | undefined;
}

export const DEFAULT_CLASSIFY_CONFIG: ClassifyConfig = { mode: 'RI', identifiers: DEFAULT_IDENTIFIER_CONFIG };

export interface Classification {
  decision: 'REPORTABLE' | 'SKIPPED';
  /** notification form: short (п.139) only with ГИС GUIDs from a lookup; null when skipped */
  form: 'full' | 'short' | null;
  /** the GUIDs the short form carries */
  guids?: { paymentDocumentGuid?: string; serviceIdGuid?: string };
  /** e.g. 'registry-match', 'identifier:paymentDocumentId'; ['none'] when nothing matched */
  rules: string[];
  /** one human sentence */
  reason: string;
  paymentDocumentId?: string;
  serviceId?: string;
  els?: string;
  accountNumber?: string;
  period?: Period;
  payee?: PayeeRecord;
  warnings: RecordProblem[];
}

const SOURCE_TEXT: Record<string, string> = {
  field22: 'in field 22',
  purpose: 'in the purpose',
  'hint:idField': 'in the identifier column',
  'hint:els': 'in the ЕЛС column',
  'hint:serviceId': 'in the ИЖКУ column',
  'hint:paymentDocumentId': 'in the ИПД column',
};

export function classify(p: Payment, registry: PayeeIndex, cfg: Partial<ClassifyConfig> = {}): Classification {
  const mode = cfg.mode ?? 'RI';
  const idCfg = cfg.identifiers ?? DEFAULT_IDENTIFIER_CONFIG;
  const ids = extractIdentifiers({ paymentId: p.paymentId, hints: p.hints, purpose: p.purpose, location: p.location, ref: p.ref }, idCfg);
  const warnings = [...ids.warnings];
  const bic = p.payee.bic ?? '';
  const account = p.payee.account ?? '';
  const exact = bic && account ? registry.find(bic, account) : undefined;
  const innKpp = p.payee.kpp && p.payee.kpp !== '0' ? p.payee.kpp : undefined;
  const byInn = !exact && cfg.innFallback && p.payee.inn && p.payee.inn !== '0' ? registry.findByInn(p.payee.inn, innKpp)[0] : undefined;
  const payee = exact ?? byInn;
  if (exact && p.payee.inn && p.payee.inn !== '0' && p.payee.inn !== exact.inn) {
    warnings.push({ code: 'INN_MISMATCH', location: p.location, ref: p.ref, message: `payee INN ${p.payee.inn} ≠ registry INN ${exact.inn} for ${bic}/${account}` });
  }

  const idRules: string[] = [];
  const idParts: string[] = [];
  const names = { paymentDocumentId: 'ИПД', serviceId: 'ИЖКУ', els: 'ЕЛС' } as const;
  for (const t of ['paymentDocumentId', 'serviceId', 'els'] as const) {
    if (ids[t]) {
      idRules.push(`identifier:${t}`);
      idParts.push(`${names[t]} ${ids[t]} ${SOURCE_TEXT[ids.sources[t] ?? ''] ?? ids.sources[t]}`);
    }
  }
  const byR = !!payee;
  const byI = idRules.length > 0;
  const reportable = mode === 'R' ? byR : mode === 'I' ? byI : byR || byI;

  const rules: string[] = [];
  if (byR && mode !== 'I') rules.push(exact ? 'registry-match' : 'registry-inn');
  if (byI && mode !== 'R') rules.push(...idRules);
  if (!rules.length) rules.push('none');

  const payeeText = `payee ${bic || '?'}/${account || '?'}`;
  const regText = exact ? `${payeeText} is in the payee registry (guid ${exact.guid}${exact.capitalRepair ? ', capital repair' : ''})`
    : byInn ? `${payeeText} is not in the payee registry, but INN ${p.payee.inn}${innKpp ? `/${innKpp}` : ''} is (fallback; guid ${byInn.guid}${byInn.capitalRepair ? ', capital repair' : ''})`
    : `${payeeText} is not in the payee registry`;
  let reason: string;
  if (reportable) {
    const parts: string[] = [];
    if (byR && mode !== 'I') parts.push(regText);
    if (byI && mode !== 'R') parts.push(idParts.join(', '));
    if (mode === 'RI' && !byR) parts.unshift(regText);
    reason = parts.join('; ');
  } else if (mode === 'R') {
    reason = `not reportable: ${regText}`;
  } else if (mode === 'I') {
    reason = `not reportable: no ЖКУ identifier was found${ids.accountNumber ? ` (a лицевой счёт ${ids.accountNumber} alone does not count)` : ''}`;
  } else {
    reason = `not reportable: ${regText} and no ЖКУ identifier was found${ids.accountNumber ? ` (a лицевой счёт ${ids.accountNumber} alone does not count)` : ''}`;
  }

  const guids = reportable && cfg.lookup && (ids.paymentDocumentId || ids.serviceId)
    ? cfg.lookup({ paymentDocumentId: ids.paymentDocumentId, serviceId: ids.serviceId }) : undefined;
  const short = !!guids && ((!!ids.paymentDocumentId && !!guids.paymentDocumentGuid) || (!!ids.serviceId && !!guids.serviceIdGuid));
  const c: Classification = { decision: reportable ? 'REPORTABLE' : 'SKIPPED', form: reportable ? (short ? 'short' : 'full') : null, rules, reason, warnings };
  if (short) c.guids = guids;
  if (ids.paymentDocumentId) c.paymentDocumentId = ids.paymentDocumentId;
  if (ids.serviceId) c.serviceId = ids.serviceId;
  if (ids.els) c.els = ids.els;
  if (ids.accountNumber) c.accountNumber = ids.accountNumber;
  if (ids.period) c.period = ids.period;
  if (payee) c.payee = payee;
  return c;
}
