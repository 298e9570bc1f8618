/**
 * SMEV 3 fault model (smev3.md §5). Pure.
 */

export interface SmevFault {
  /** Local name of the fault element in soap:Fault/detail (faults namespace), e.g. 'SignatureVerificationFault'. */
  name: string;
  /** Fault detail Code (internal locator or 6-digit code). */
  code?: string;
  /** Fault detail Description, usually prefixed with 'SMEV-nnn:'. */
  description?: string;
  /** soap:Fault/faultstring. */
  faultstring: string;
  /** soap:Fault/faultcode as written (e.g. 'soap:Server'). */
  faultcode?: string;
  /** 'SMEV-100' etc., parsed from the Description prefix. */
  smevCode?: string;
  /** SignatureVerificationFault enum child (NoSignatureFound, CertificateIsExpired, …). */
  signatureFault?: string;
  /** InvalidContent/ValidationError texts. */
  validationErrors?: string[];
  /** Other simple children of the fault element (RootElementLocalName, DestinationName, …). */
  extra?: Record<string, string>;
  /** SMEV version detected from the fault namespace, if any. */
  version?: string;
}

/** Fault element names of the faults namespace (smev3.md §5.2). */
export const SMEV_FAULT_NAMES = [
  'BusinessDataTypeIsNotSupported',
  'InvalidContent',
  'UnknownMessageType',
  'TransactionCodeInvalid',
  'MessageIsAlreadySent',
  'InvalidMessageIdFormat',
  'StaleMessageId',
  'AttachmentContentMiscoordination',
  'AttachmentSizeLimitExceeded',
  'QuoteLimitExceeded',
  'AccessDenied',
  'PersonalAccessDenied',
  'SignatureVerificationFault',
  'SMEVFailure',
  'IncorrectResponseContentType',
  'RecipientIsNotFound',
  'SenderIsNotRegistered',
  'RequestIsNotFound',
  'TargetMessageIsNotFound',
  'DestinationOverflow',
  'EndOfLifeReached',
] as const;

export type SmevFaultName = (typeof SMEV_FAULT_NAMES)[number];

/** SignatureVerificationFault enum values. */
export const SIGNATURE_FAULT_CODES = [
  'PoorSOAPEnvelopeFormat',
  'NoSignatureFound',
  'IncorrectSignatureTarget',
  'SignatureIsInvalid',
  'CertificateIsNotFound',
  'CertificateIsExpired',
] as const;

export type SignatureFaultCode = (typeof SIGNATURE_FAULT_CODES)[number];

/** Faults whose type is basic:Void (no Code/Description children per the XSD). */
export const VOID_FAULTS: ReadonlySet<string> = new Set([
  'UnknownMessageType',
  'MessageIsAlreadySent',
  'InvalidMessageIdFormat',
  'StaleMessageId',
  'AttachmentContentMiscoordination',
  'AccessDenied',
  'SMEVFailure',
  'IncorrectResponseContentType',
  'RecipientIsNotFound',
  'SenderIsNotRegistered',
  'RequestIsNotFound',
  'TargetMessageIsNotFound',
]);

export function isKnownFaultName(name: string): name is SmevFaultName {
  return (SMEV_FAULT_NAMES as readonly string[]).includes(name);
}

export type FaultDisposition = 'retry' | 'delivered' | 'rebuild' | 'park';

/**
 * What the client should do after a SMEV fault:
 *  - retry:     SMEVFailure, DestinationOverflow, EndOfLifeReached (transient; retry with back-off, same MessageID)
 *  - delivered: MessageIsAlreadySent (the earlier attempt was accepted — treat as success)
 *  - rebuild:   StaleMessageId (new MessageID, new signature, same content)
 *  - park:      everything else (manual attention: signature, access, content, …)
 */
export function faultDisposition(name: string): FaultDisposition {
  switch (name) {
    case 'SMEVFailure':
    case 'DestinationOverflow':
    case 'EndOfLifeReached':
      return 'retry';
    case 'MessageIsAlreadySent':
      return 'delivered';
    case 'StaleMessageId':
      return 'rebuild';
    default:
      return 'park';
  }
}

/** 'SMEV-100:…' / 'SMEV-403: …' → 'SMEV-100'. */
export function parseSmevCode(description: string | undefined): string | undefined {
  if (!description) return undefined;
  const m = /^\s*(SMEV-\d+)\s*:/.exec(description);
  return m ? m[1] : undefined;
}

/** Thrown by clients when a SOAP fault is received (carries the parsed fault). */
export class SmevFaultError extends Error {
  override name = 'SmevFaultError';
  constructor(public readonly fault: SmevFault) {
    super(`${fault.name}: ${fault.description ?? fault.faultstring}`);
  }
  get disposition(): FaultDisposition {
    return faultDisposition(this.fault.name);
  }
}
