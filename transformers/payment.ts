/**
 * The canonical Payment: what every intake transformer (UFEBS, CSV) produces and every later step consumes.
 * Money is integer kopecks (a safe integer), text is already decoded, identifiers are strings.
 */

export interface Party {
  name?: string;
  inn?: string;
  kpp?: string;
  /** settlement account (20 chars) */
  account?: string;
  bic?: string;
  corrAccount?: string;
  bankName?: string;
}

export interface Period {
  year: number;
  month: number;
}

/** Values a source format carries in a dedicated place (CSV column/tag), unvalidated. */
export interface PaymentHints {
  paymentDocumentId?: string;
  serviceId?: string;
  els?: string;
  accountNumber?: string;
  /** raw period text as found (e.g. "102025", "10.2025") */
  period?: string;
  /** the raw identifier column/tag value that may hold any ЖКУ id (e.g. CLIENTDOCNO) */
  idField?: string;
  payerAddress?: string;
  fiasHouseGuid?: string;
}

export type SourceKind = 'ED101' | 'ED103' | 'ED104' | 'ED105' | 'ED108' | 'CSV';

export interface Payment {
  /** idempotency key of the bank document, stable across files: ED identity (+ row), or CSV row identity */
  sourceKey: string;
  /** human reference: "ED101/1002", "ED108/1102#1", "op 000157000001" */
  ref: string;
  /** where in the file: "line 3", "ED101[EDNo=1002]" */
  location: string;
  kind: SourceKind;
  amountKop: number;
  /** payment date YYYY-MM-DD */
  date: string;
  /** payer's document number and date (AccDoc / PayerDocNo), when known */
  docNo?: string;
  docDate?: string;
  purpose: string;
  /** field 22 «Код» (ED101/@PaymentID, ED108 row @PaymentID) */
  paymentId?: string;
  payer: Party;
  payee: Party;
  hints: PaymentHints;
}

/** A problem tied to a place in an input file. `code` is one of the outcome codes of input-formats §1. */
export class IntakeError extends Error {
  constructor(
    readonly code: string,
    readonly location: string,
    message: string,
  ) {
    super(`${code} at ${location}: ${message}`);
    this.name = 'IntakeError';
  }
}

export interface RecordProblem {
  code: string;
  location: string;
  message: string;
  /** the record's reference when it could be read far enough */
  ref?: string;
}

export interface ParsedFile {
  /** 'UFEBS' | 'CSV:<layout name>' */
  format: string;
  encoding: 'utf-8' | 'windows-1251' | string;
  payments: Payment[];
  /** records rejected individually; the rest of the file still flows */
  rejected: RecordProblem[];
  warnings: RecordProblem[];
}

/** A row of the payee registry (ГИС ЖКХ «реестр получателей платежей»). All values are strings as given. */
export interface PayeeRecord {
  ogrn: string;
  inn: string;
  kpp: string;
  name: string;
  bic: string;
  account: string;
  corrAccount: string;
  bankName: string;
  capitalRepair: boolean;
  guid: string;
  /** ISO 8601 */
  updatedAt: string;
  /** budget payees only (registry over SMEV) */
  kbk?: string;
  oktmo?: string;
}
