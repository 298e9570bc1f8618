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
}

export const DEFAULT_CLASSIFY_CONFIG: ClassifyConfig = { mode: 'RI', identifiers: DEFAULT_IDENTIFIER_CONFIG };

export interface Classification {
  decision: 'REPORTABLE' | 'SKIPPED';
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
  const payee = bic && account ? registry.find(bic, account) : undefined;
  if (payee && p.payee.inn && p.payee.inn !== '0' && p.payee.inn !== payee.inn) {
    warnings.push({ code: 'INN_MISMATCH', location: p.location, ref: p.ref, message: `payee INN ${p.payee.inn} ≠ registry INN ${payee.inn} for ${bic}/${account}` });
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
  if (byR && mode !== 'I') rules.push('registry-match');
  if (byI && mode !== 'R') rules.push(...idRules);
  if (!rules.length) rules.push('none');

  const payeeText = `payee ${bic || '?'}/${account || '?'}`;
  const regText = payee ? `${payeeText} is in the payee registry (guid ${payee.guid}${payee.capitalRepair ? ', capital repair' : ''})` : `${payeeText} is not in the payee registry`;
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

  const c: Classification = { decision: reportable ? 'REPORTABLE' : 'SKIPPED', rules, reason, warnings };
  if (ids.paymentDocumentId) c.paymentDocumentId = ids.paymentDocumentId;
  if (ids.serviceId) c.serviceId = ids.serviceId;
  if (ids.els) c.els = ids.els;
  if (ids.accountNumber) c.accountNumber = ids.accountNumber;
  if (ids.period) c.period = ids.period;
  if (payee) c.payee = payee;
  return c;
}
