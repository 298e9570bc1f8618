/**
 * SMEV 3 SOAP 1.1 envelopes (smev3.md §1–§6, Appendix A). Pure: strings in, strings out.
 *
 * Builders emit the conventional JAXB prefixes (default = basic, ns2 = types, ns3 = faults) and an
 * empty `<soap:Header/>`. Every signed element carries an `Id`; its signature container is emitted EMPTY
 * (`<ns2:CallerInformationSystemSignature></ns2:CallerInformationSystemSignature>`, or `SMEVSignature` for the
 * SMEV-side builders) at its schema position; the signer (connectors/smev3/signature.ts) fills it.
 *
 * Parsers are namespace-aware and prefix-agnostic; the version is detected from the namespace URI.
 */
import {
  child,
  childElements,
  children,
  escapeAttr,
  escapeText,
  outerXmlSubstring,
  parseXml,
  text,
  XmlParseError,
} from './xml.ts';
import { parseSmevCode, type SmevFault } from './faults.ts';
import { SmevCanonicalWriter, type XmlSink } from './canonical.ts';

export type SmevVersion = '1.1' | '1.2' | '1.3';
export const SMEV_VERSIONS: readonly SmevVersion[] = ['1.1', '1.2', '1.3'];

export const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
export const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';

const BASE = 'urn://x-artefacts-smev-gov-ru/services/message-exchange';

export interface SmevNamespaces {
  service: string;
  types: string;
  basic: string;
  faults: string;
}

export function smevNamespaces(version: SmevVersion): SmevNamespaces {
  return {
    service: `${BASE}/${version}`,
    types: `${BASE}/types/${version}`,
    basic: `${BASE}/types/basic/${version}`,
    faults: `${BASE}/types/faults/${version}`,
  };
}

const NS_RE = /^urn:\/\/x-artefacts-smev-gov-ru\/services\/message-exchange\/types\/(?:(basic|faults)\/)?(1\.\d)$/;

/** Detects the SMEV version and kind from a namespace URI ('types' | 'basic' | 'faults'). */
export function smevNamespaceInfo(ns: string | null | undefined): { version: SmevVersion; kind: 'types' | 'basic' | 'faults' } | undefined {
  if (!ns) return undefined;
  const m = NS_RE.exec(ns);
  if (!m || !(SMEV_VERSIONS as readonly string[]).includes(m[2]!)) return undefined;
  return { version: m[2] as SmevVersion, kind: (m[1] as 'basic' | 'faults' | undefined) ?? 'types' };
}

export class SmevEnvelopeError extends Error {
  override name = 'SmevEnvelopeError';
}

// ---------------------------------------------------------------------------------------------
// formatting helpers

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * xs:dateTime in a fixed offset with milliseconds, e.g. 2018-09-20T16:22:49.874+03:00.
 * `offsetMinutes` defaults to +180 (Moscow time, as SMEV itself emits).
 */
export function formatDateTime(d: Date, offsetMinutes = 180): string {
  if (Number.isNaN(d.getTime())) throw new SmevEnvelopeError('invalid date');
  const t = new Date(d.getTime() + offsetMinutes * 60_000);
  const sign = offsetMinutes >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMinutes);
  return (
    `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}` +
    `T${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}.${pad(t.getUTCMilliseconds(), 3)}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function dt(v: Date | string): string {
  return typeof v === 'string' ? v : formatDateTime(v);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function checkUuid(v: string, what: string): string {
  if (!UUID_RE.test(v)) throw new SmevEnvelopeError(`${what} must be a lowercase UUID, got '${v}'`);
  return v;
}
const NCNAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
function checkId(v: string): string {
  if (!NCNAME_RE.test(v)) throw new SmevEnvelopeError(`Id must be an NCName, got '${v}'`);
  return v;
}

function rootDecls(v: SmevVersion): string {
  const ns = smevNamespaces(v);
  return ` xmlns="${ns.basic}" xmlns:ns2="${ns.types}" xmlns:ns3="${ns.faults}"`;
}

/** Wraps a body element into a SOAP 1.1 envelope with an empty header. */
export function soapEnvelope(body: string): string {
  return `<soap:Envelope xmlns:soap="${SOAP_NS}"><soap:Header/><soap:Body>${body}</soap:Body></soap:Envelope>`;
}

/** Strips an XML declaration / BOM and checks that `content` is exactly one namespaced element. */
function prepareContent(content: string, version: SmevVersion): string {
  let c = content.replace(/^\uFEFF/, '').replace(/^\s*<\?xml[^?]*\?>/, '').trim();
  if (!c.startsWith('<')) throw new SmevEnvelopeError('content must be one XML element');
  let doc: Document;
  try {
    doc = parseXml(c);
  } catch (e) {
    throw new SmevEnvelopeError(`content is not well-formed: ${(e as Error).message}`);
  }
  const root = doc.documentElement!;
  const ns = root.namespaceURI;
  if (!ns) throw new SmevEnvelopeError('content root element must be in a namespace (declare it on the root)');
  if (smevNamespaceInfo(ns)?.version === version) throw new SmevEnvelopeError('content root must not be in a SMEV namespace');
  return c;
}

export interface BuiltRequest {
  xml: string;
  signedId: string;
  containerLocalName: 'CallerInformationSystemSignature';
}

export interface BuiltSmevResponse {
  xml: string;
  /** Id of the element SMEV signs (absent when nothing is signed, e.g. empty queue). */
  signedId?: string;
  containerLocalName?: 'SMEVSignature';
}

const CALLER_SIG = '<ns2:CallerInformationSystemSignature></ns2:CallerInformationSystemSignature>';
const SMEV_SIG = '<ns2:SMEVSignature></ns2:SMEVSignature>';

// ---------------------------------------------------------------------------------------------
// client requests

export interface SendRequestParams {
  version: SmevVersion;
  messageId: string;
  /** Business XML (one element, its namespaces declared on it), put verbatim into MessagePrimaryContent. */
  content: string;
  /** Id of SenderProvidedRequestData; default SIGNED_BY_CONSUMER. */
  id?: string;
  testMessage?: boolean;
  transactionCode?: string;
  referenceMessageId?: string;
  nodeId?: string;
  /** Message end of life (xs:dateTime). */
  eol?: Date | string;
}

export function buildSendRequest(p: SendRequestParams): BuiltRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CONSUMER');
  const content = prepareContent(p.content, p.version);
  let x = `<ns2:SendRequestRequest${rootDecls(p.version)}>`;
  x += `<ns2:SenderProvidedRequestData Id="${escapeAttr(id)}">`;
  x += `<ns2:MessageID>${checkUuid(p.messageId, 'messageId')}</ns2:MessageID>`;
  if (p.referenceMessageId) x += `<ns2:ReferenceMessageID>${checkUuid(p.referenceMessageId, 'referenceMessageId')}</ns2:ReferenceMessageID>`;
  if (p.transactionCode) x += `<ns2:TransactionCode>${escapeText(p.transactionCode)}</ns2:TransactionCode>`;
  if (p.nodeId) x += `<ns2:NodeID>${escapeText(p.nodeId)}</ns2:NodeID>`;
  if (p.eol) x += `<ns2:EOL>${escapeText(dt(p.eol))}</ns2:EOL>`;
  x += `<MessagePrimaryContent>${content}</MessagePrimaryContent>`;
  if (p.testMessage) x += `<ns2:TestMessage/>`;
  x += `</ns2:SenderProvidedRequestData>`;
  x += CALLER_SIG;
  x += `</ns2:SendRequestRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature' };
}

/** A SendRequest whose signed element was written in SMEV-canonical form (see buildSendRequestCanonical). */
export interface BuiltCanonicalRequest extends BuiltRequest {
  /** SenderProvidedRequestData exactly as it stands in `xml`: also its SMEV transform output, i.e. what is hashed */
  transformed: string;
  /** the business element as it stands in `xml` (standalone: it declares every namespace it uses) */
  content: string;
}

/**
 * SendRequest whose SenderProvidedRequestData is written by `writeContent` through a SmevCanonicalWriter, so that
 * the element's text is its own SMEV transform output: signing hashes it as it is, without parsing it again.
 * Same elements, order and checks as buildSendRequest; the content must use its own namespaces (not SMEV's).
 */
export function buildSendRequestCanonical(p: Omit<SendRequestParams, 'content'> & { writeContent: (w: XmlSink) => void }): BuiltCanonicalRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CONSUMER');
  const ns = smevNamespaces(p.version);
  const w = new SmevCanonicalWriter();
  w.open(ns.types, 'SenderProvidedRequestData', { Id: id });
  w.leaf(ns.types, 'MessageID', checkUuid(p.messageId, 'messageId'));
  if (p.referenceMessageId) w.leaf(ns.types, 'ReferenceMessageID', checkUuid(p.referenceMessageId, 'referenceMessageId'));
  if (p.transactionCode) w.leaf(ns.types, 'TransactionCode', p.transactionCode);
  if (p.nodeId) w.leaf(ns.types, 'NodeID', p.nodeId);
  if (p.eol) w.leaf(ns.types, 'EOL', dt(p.eol));
  w.open(ns.basic, 'MessagePrimaryContent');
  const from = w.position;
  p.writeContent(w);
  const to = w.position;
  w.close();
  if (p.testMessage) {
    w.open(ns.types, 'TestMessage');
    w.close();
  }
  w.close();
  const transformed = w.toString();
  const content = transformed.slice(from, to);
  if (!content.startsWith('<') || content.startsWith('</')) throw new SmevEnvelopeError('content must be one XML element');
  const x = `<ns2:SendRequestRequest${rootDecls(p.version)}>${transformed}${CALLER_SIG}</ns2:SendRequestRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature', transformed, content };
}

export interface GetResponseRequestParams {
  version: SmevVersion;
  timestamp: Date;
  namespaceUri?: string;
  rootElementLocalName?: string;
  nodeId?: string;
  /** Id of MessageTypeSelector; default SIGNED_BY_CALLER. */
  id?: string;
}

function selector(p: GetResponseRequestParams, id: string): string {
  if (!!p.namespaceUri !== !!p.rootElementLocalName) {
    throw new SmevEnvelopeError('namespaceUri and rootElementLocalName go together or not at all');
  }
  let x = `<MessageTypeSelector Id="${escapeAttr(id)}">`;
  if (p.namespaceUri && p.rootElementLocalName) {
    if (!NCNAME_RE.test(p.rootElementLocalName)) throw new SmevEnvelopeError('rootElementLocalName must be an NCName');
    x += `<NamespaceURI>${escapeText(p.namespaceUri)}</NamespaceURI>`;
    x += `<RootElementLocalName>${p.rootElementLocalName}</RootElementLocalName>`;
  }
  x += `<Timestamp>${formatDateTime(p.timestamp)}</Timestamp>`;
  if (p.nodeId) x += `<NodeID>${escapeText(p.nodeId)}</NodeID>`;
  return x + `</MessageTypeSelector>`;
}

export function buildGetResponseRequest(p: GetResponseRequestParams): BuiltRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CALLER');
  const x = `<ns2:GetResponseRequest${rootDecls(p.version)}>${selector(p, id)}${CALLER_SIG}</ns2:GetResponseRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature' };
}

/** GetRequest (provider side polling) — same shape as GetResponse. */
export function buildGetRequestRequest(p: GetResponseRequestParams): BuiltRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CALLER');
  const x = `<ns2:GetRequestRequest${rootDecls(p.version)}>${selector(p, id)}${CALLER_SIG}</ns2:GetRequestRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature' };
}

export interface AckRequestParams {
  version: SmevVersion;
  /** MessageID of the received message (SenderProvidedResponseData/MessageID). */
  messageId: string;
  accepted: boolean;
  id?: string;
}

export function buildAckRequest(p: AckRequestParams): BuiltRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CALLER');
  const x =
    `<ns2:AckRequest${rootDecls(p.version)}>` +
    `<AckTargetMessage Id="${escapeAttr(id)}" accepted="${p.accepted ? 'true' : 'false'}">${checkUuid(p.messageId, 'messageId')}</AckTargetMessage>` +
    CALLER_SIG +
    `</ns2:AckRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature' };
}

export interface GetStatusRequestParams {
  version: SmevVersion;
  timestamp: Date;
  id?: string;
}

export function buildGetStatusRequest(p: GetStatusRequestParams): BuiltRequest {
  const id = checkId(p.id ?? 'SIGNED_BY_CALLER');
  const x =
    `<ns2:GetStatusRequest${rootDecls(p.version)}>` +
    `<Timestamp Id="${escapeAttr(id)}">${formatDateTime(p.timestamp)}</Timestamp>` +
    CALLER_SIG +
    `</ns2:GetStatusRequest>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'CallerInformationSystemSignature' };
}

// ---------------------------------------------------------------------------------------------
// SMEV-side responses (simulator)

export type Participant = string | { mnemonic: string; name?: string };

function participant(tag: 'Sender' | 'Recipient', p: Participant, v: SmevVersion): string {
  const mnemonic = typeof p === 'string' ? p : p.mnemonic;
  const name = typeof p === 'string' ? p : (p.name ?? p.mnemonic);
  let x = `<ns2:${tag}><ns2:Mnemonic>${escapeText(mnemonic)}</ns2:Mnemonic>`;
  if (v !== '1.2') x += `<ns2:HumanReadableName>${escapeText(name)}</ns2:HumanReadableName>`;
  return x + `</ns2:${tag}>`;
}

export interface MetadataParams {
  version: SmevVersion;
  messageId?: string;
  messageType: 'REQUEST' | 'RESPONSE' | 'BROADCAST';
  sender: Participant;
  recipient?: Participant;
  sendingTimestamp: Date | string;
  deliveryTimestamp?: Date | string;
  status?: string;
  id?: string;
  /** 1.1 only: DestinationName (required there); default 'unknown'. */
  destinationName?: string;
}

/**
 * MessageMetadata in the version's shape: 1.1 full (Sender{Mnemonic,HumanReadableName}, DestinationName,
 * SupplementaryData{InteractionType}); 1.2 slim (Mnemonic only); 1.3 (Mnemonic + HumanReadableName).
 */
export function buildMessageMetadata(p: MetadataParams): string {
  const v = p.version;
  let x = p.id ? `<ns2:MessageMetadata Id="${escapeAttr(checkId(p.id))}">` : `<ns2:MessageMetadata>`;
  if (p.messageId) x += `<ns2:MessageId>${checkUuid(p.messageId, 'messageId')}</ns2:MessageId>`;
  x += `<ns2:MessageType>${p.messageType}</ns2:MessageType>`;
  x += participant('Sender', p.sender, v);
  x += `<ns2:SendingTimestamp>${escapeText(dt(p.sendingTimestamp))}</ns2:SendingTimestamp>`;
  if (v === '1.1') x += `<ns2:DestinationName>${escapeText(p.destinationName ?? 'unknown')}</ns2:DestinationName>`;
  if (p.recipient) x += participant('Recipient', p.recipient, v);
  if (v === '1.1') x += `<ns2:SupplementaryData><ns2:InteractionType>NotDetected</ns2:InteractionType></ns2:SupplementaryData>`;
  if (p.deliveryTimestamp) x += `<ns2:DeliveryTimestamp>${escapeText(dt(p.deliveryTimestamp))}</ns2:DeliveryTimestamp>`;
  if (p.status) x += `<ns2:Status>${escapeText(p.status)}</ns2:Status>`;
  return x + `</ns2:MessageMetadata>`;
}

export interface SendRequestResponseParams {
  version: SmevVersion;
  messageId: string;
  sender: Participant;
  recipient?: Participant;
  sendingTimestamp: Date | string;
  /** default 'requestIsQueued' */
  status?: string;
}

export function buildSendRequestResponse(p: SendRequestResponseParams): BuiltSmevResponse {
  const x =
    `<ns2:SendRequestResponse${rootDecls(p.version)}>` +
    buildMessageMetadata({
      version: p.version,
      id: 'SIGNED_BY_SMEV',
      messageId: p.messageId,
      messageType: 'REQUEST',
      sender: p.sender,
      recipient: p.recipient,
      sendingTimestamp: p.sendingTimestamp,
      status: p.status ?? 'requestIsQueued',
    }) +
    SMEV_SIG +
    `</ns2:SendRequestResponse>`;
  return { xml: soapEnvelope(x), signedId: 'SIGNED_BY_SMEV', containerLocalName: 'SMEVSignature' };
}

export interface AsyncFaultParams {
  /** Fault type local name in the faults namespace (xsi:type), e.g. 'InvalidContent'. */
  type: string;
  code?: string;
  description?: string;
  validationErrors?: string[];
}

export interface AsyncStatusParams {
  category: string;
  details?: string;
  fault?: AsyncFaultParams;
}

function asyncStatus(originalMessageId: string, s: AsyncStatusParams): string {
  let x = `<ns2:AsyncProcessingStatus>`;
  x += `<ns2:OriginalMessageId>${checkUuid(originalMessageId, 'originalMessageId')}</ns2:OriginalMessageId>`;
  x += `<ns2:StatusCategory>${escapeText(s.category)}</ns2:StatusCategory>`;
  if (s.details) x += `<ns2:StatusDetails>${escapeText(s.details)}</ns2:StatusDetails>`;
  if (s.fault) {
    const f = s.fault;
    if (!NCNAME_RE.test(f.type)) throw new SmevEnvelopeError('fault type must be an NCName');
    x += `<ns2:SmevFault xmlns:xsi="${XSI_NS}" xsi:type="ns3:${f.type}">`;
    if (f.code) x += `<Code>${escapeText(f.code)}</Code>`;
    if (f.description) x += `<Description>${escapeText(f.description)}</Description>`;
    for (const ve of f.validationErrors ?? []) x += `<ns3:ValidationError errorPosition="-1">${escapeText(ve)}</ns3:ValidationError>`;
    x += `</ns2:SmevFault>`;
  }
  return x + `</ns2:AsyncProcessingStatus>`;
}

export interface ResponseMessageParams {
  /** MessageID of the request being answered. */
  originalMessageId: string;
  /** MessageID of the response (SenderProvidedResponseData/MessageID, the one to Ack). */
  messageId: string;
  /** Opaque routing string; default a base64 JSON like SMEV's. */
  to?: string;
  /** Business XML for MessagePrimaryContent (provider response, Id SIGNED_BY_PROVIDER). */
  content?: string;
  /** SMEV-generated status instead of content (Id SIGNED_ASYNC_BY_SMEV, sender SMEV). */
  asyncStatus?: AsyncStatusParams;
  originalTransactionCode?: string;
  sender: Participant;
  recipient?: Participant;
  sendingTimestamp: Date | string;
  deliveryTimestamp?: Date | string;
  status?: string;
  /** Id of SenderProvidedResponseData; defaults per the above. */
  providerId?: string;
  /** Emit an EMPTY SenderInformationSystemSignature container for provider content (default true). */
  senderSignature?: boolean;
}

export interface GetResponseResponseParams {
  version: SmevVersion;
  message?: ResponseMessageParams;
}

export function buildGetResponseResponse(p: GetResponseResponseParams): BuiltSmevResponse {
  const v = p.version;
  if (!p.message) {
    return { xml: soapEnvelope(`<ns2:GetResponseResponse${rootDecls(v)}/>`) };
  }
  const m = p.message;
  if (!m.content === !m.asyncStatus) throw new SmevEnvelopeError('message needs exactly one of content / asyncStatus');
  const isAsync = !!m.asyncStatus;
  const providerId = checkId(m.providerId ?? (isAsync ? 'SIGNED_ASYNC_BY_SMEV' : 'SIGNED_BY_PROVIDER'));
  const to =
    m.to ??
    Buffer.from(JSON.stringify({ mid: m.originalMessageId, mnm: typeof m.recipient === 'string' ? m.recipient : m.recipient?.mnemonic ?? null })).toString('base64');
  let x = `<ns2:GetResponseResponse${rootDecls(v)}><ns2:ResponseMessage><ns2:Response Id="SIGNED_BY_SMEV">`;
  x += `<ns2:OriginalMessageId>${checkUuid(m.originalMessageId, 'originalMessageId')}</ns2:OriginalMessageId>`;
  if (m.originalTransactionCode) x += `<ns2:OriginalTransactionCode>${escapeText(m.originalTransactionCode)}</ns2:OriginalTransactionCode>`;
  x += `<ns2:SenderProvidedResponseData Id="${escapeAttr(providerId)}">`;
  x += `<ns2:MessageID>${checkUuid(m.messageId, 'messageId')}</ns2:MessageID>`;
  x += `<ns2:To>${escapeText(to)}</ns2:To>`;
  if (m.content) x += `<MessagePrimaryContent>${prepareContent(m.content, v)}</MessagePrimaryContent>`;
  else x += asyncStatus(m.originalMessageId, m.asyncStatus!);
  x += `</ns2:SenderProvidedResponseData>`;
  x += buildMessageMetadata({
    version: v,
    messageId: m.messageId,
    messageType: 'RESPONSE',
    sender: isAsync ? (m.sender ?? 'SMEV') : m.sender,
    recipient: m.recipient,
    sendingTimestamp: m.sendingTimestamp,
    deliveryTimestamp: m.deliveryTimestamp,
    status: m.status ?? (v === '1.1' ? 'responseIsDelivered' : 'messageIsDelivered'),
  });
  if (!isAsync && m.senderSignature !== false) x += `<ns2:SenderInformationSystemSignature></ns2:SenderInformationSystemSignature>`;
  x += `</ns2:Response>${SMEV_SIG}</ns2:ResponseMessage></ns2:GetResponseResponse>`;
  return { xml: soapEnvelope(x), signedId: 'SIGNED_BY_SMEV', containerLocalName: 'SMEVSignature' };
}

export function buildAckResponse(p: { version: SmevVersion }): BuiltSmevResponse {
  return { xml: soapEnvelope(`<ns2:AckResponse${rootDecls(p.version)}/>`) };
}

export interface GetStatusResponseParams {
  version: SmevVersion;
  status?: { originalMessageId: string } & AsyncStatusParams;
  id?: string;
}

export function buildGetStatusResponse(p: GetStatusResponseParams): BuiltSmevResponse {
  if (!p.status) return { xml: soapEnvelope(`<ns2:GetStatusResponse${rootDecls(p.version)}/>`) };
  const id = checkId(p.id ?? 'SIGNED_BY_SMEV');
  const x =
    `<ns2:GetStatusResponse${rootDecls(p.version)}><ns2:SmevAsyncProcessingMessage>` +
    `<ns2:AsyncProcessingStatusData Id="${escapeAttr(id)}">${asyncStatus(p.status.originalMessageId, p.status)}</ns2:AsyncProcessingStatusData>` +
    SMEV_SIG +
    `</ns2:SmevAsyncProcessingMessage></ns2:GetStatusResponse>`;
  return { xml: soapEnvelope(x), signedId: id, containerLocalName: 'SMEVSignature' };
}

export interface FaultParams {
  version: SmevVersion;
  /** Fault element local name in the faults namespace, e.g. 'SignatureVerificationFault'. */
  name: string;
  code?: string;
  /** e.g. 'SMEV-100:Отсутствует ЭП-ОВ' */
  description?: string;
  faultstring: string;
  faultcode?: string;
  signatureFault?: 'PoorSOAPEnvelopeFormat' | 'NoSignatureFound' | 'IncorrectSignatureTarget' | 'SignatureIsInvalid' | 'CertificateIsNotFound' | 'CertificateIsExpired';
  validationErrors?: string[];
  /** Extra fault-specific children in the faults namespace, in order (e.g. RootElementLocalName). */
  extra?: Record<string, string>;
}

/** SOAP 1.1 fault in the shape SMEV sends (smev3.md §5.1). */
export function buildFault(p: FaultParams): string {
  if (!NCNAME_RE.test(p.name)) throw new SmevEnvelopeError('fault name must be an NCName');
  const ns = smevNamespaces(p.version);
  const hasSmevFaultChildren = p.code !== undefined || p.description !== undefined;
  const VOIDS = new Set([
    'UnknownMessageType', 'MessageIsAlreadySent', 'InvalidMessageIdFormat', 'StaleMessageId', 'AttachmentContentMiscoordination',
    'AccessDenied', 'SMEVFailure', 'IncorrectResponseContentType', 'RecipientIsNotFound', 'SenderIsNotRegistered',
    'RequestIsNotFound', 'TargetMessageIsNotFound',
  ]);
  const xsiType = VOIDS.has(p.name) && hasSmevFaultChildren ? ` xmlns:xsi="${XSI_NS}" xsi:type="SmevFault"` : '';
  let d = `<ns3:${p.name} xmlns:ns3="${ns.faults}" xmlns:ns2="${ns.types}" xmlns="${ns.basic}"${xsiType}>`;
  if (p.code !== undefined) d += `<Code>${escapeText(p.code)}</Code>`;
  if (p.description !== undefined) d += `<Description>${escapeText(p.description)}</Description>`;
  for (const [k, val] of Object.entries(p.extra ?? {})) {
    if (!NCNAME_RE.test(k)) throw new SmevEnvelopeError(`extra key must be an NCName: ${k}`);
    d += `<ns3:${k}>${escapeText(val)}</ns3:${k}>`;
  }
  for (const ve of p.validationErrors ?? []) d += `<ns3:ValidationError errorPosition="-1">${escapeText(ve)}</ns3:ValidationError>`;
  if (p.signatureFault) d += `<ns3:SignatureVerificationFault>${p.signatureFault}</ns3:SignatureVerificationFault>`;
  d += `</ns3:${p.name}>`;
  return (
    `<soap:Envelope xmlns:soap="${SOAP_NS}"><soap:Body><soap:Fault>` +
    `<faultcode>${escapeText(p.faultcode ?? 'soap:Server')}</faultcode>` +
    `<faultstring>${escapeText(p.faultstring)}</faultstring>` +
    `<detail>${d}</detail>` +
    `</soap:Fault></soap:Body></soap:Envelope>`
  );
}

// ---------------------------------------------------------------------------------------------
// parsing

/** The SOAP Body's first element (or the root itself for a bare element). */
function bodyElement(doc: Document): Element {
  const root = doc.documentElement!;
  if (root.namespaceURI === SOAP_NS && root.localName === 'Envelope') {
    const body = child(root, SOAP_NS, 'Body');
    if (!body) throw new SmevEnvelopeError('soap:Body missing');
    const first = childElements(body)[0];
    if (!first) throw new SmevEnvelopeError('soap:Body is empty');
    return first;
  }
  return root;
}

export type SmevOperation = 'SendRequest' | 'GetResponse' | 'Ack' | 'GetStatus' | 'GetRequest' | 'SendResponse';

const REQUEST_OPS: Record<string, SmevOperation> = {
  SendRequestRequest: 'SendRequest',
  GetResponseRequest: 'GetResponse',
  AckRequest: 'Ack',
  GetStatusRequest: 'GetStatus',
  GetRequestRequest: 'GetRequest',
  SendResponseRequest: 'SendResponse',
};

export interface ParsedSmevRequest {
  version: SmevVersion;
  operation: SmevOperation;
  messageId?: string;
  /** Exact substring of the business element inside MessagePrimaryContent. */
  content?: string;
  contentRoot?: { ns: string; local: string };
  /** the business element itself (in the parsed document), for a reader that need not parse `content` again */
  contentElement?: Element;
  timestamp?: string;
  namespaceUri?: string;
  rootElementLocalName?: string;
  nodeId?: string;
  ackTarget?: string;
  accepted?: boolean;
  signedId?: string;
  testMessage?: boolean;
  transactionCode?: string;
  referenceMessageId?: string;
  /** SendResponse: To */
  to?: string;
  /** true when CallerInformationSystemSignature contains an element. */
  hasSignature: boolean;
  /** true when a CallerInformationSystemSignature element exists (even empty). */
  hasSignatureContainer: boolean;
}

function contentOf(xml: string, parent: Element, basic: string): Pick<ParsedSmevRequest, 'content' | 'contentRoot' | 'contentElement'> {
  const mpc = child(parent, basic, 'MessagePrimaryContent');
  if (!mpc) return {};
  const biz = childElements(mpc)[0];
  if (!biz) return {};
  return {
    content: outerXmlSubstring(xml, biz),
    contentRoot: { ns: biz.namespaceURI ?? '', local: biz.localName ?? '' },
    contentElement: biz,
  };
}

/**
 * Parses a client request (whole envelope or bare element) — used by the simulator. `doc`: the same text already
 * parsed (parseXml), so that the signature check reads the same tree.
 */
export function parseSmevRequest(xml: string, doc: Document = parseXml(xml)): ParsedSmevRequest {
  const el = bodyElement(doc);
  const info = smevNamespaceInfo(el.namespaceURI);
  if (!info || info.kind !== 'types') throw new SmevEnvelopeError(`not a SMEV request element: {${el.namespaceURI}}${el.localName}`);
  const op = REQUEST_OPS[el.localName ?? ''];
  if (!op) throw new SmevEnvelopeError(`unknown SMEV operation element: ${el.localName}`);
  const ns = smevNamespaces(info.version);
  const sig = child(el, ns.types, 'CallerInformationSystemSignature');
  const out: ParsedSmevRequest = {
    version: info.version,
    operation: op,
    hasSignatureContainer: !!sig,
    hasSignature: !!sig && childElements(sig).length > 0,
  };
  switch (op) {
    case 'SendRequest':
    case 'SendResponse': {
      const data = child(el, ns.types, op === 'SendRequest' ? 'SenderProvidedRequestData' : 'SenderProvidedResponseData');
      if (!data) throw new SmevEnvelopeError('SenderProvided*Data missing');
      out.signedId = data.getAttribute('Id') || undefined;
      out.messageId = text(child(data, ns.types, 'MessageID'))?.trim();
      const ref = text(child(data, ns.types, 'ReferenceMessageID'));
      if (ref) out.referenceMessageId = ref.trim();
      const tc = text(child(data, ns.types, 'TransactionCode'));
      if (tc !== undefined) out.transactionCode = tc;
      const node = text(child(data, ns.types, 'NodeID'));
      if (node !== undefined) out.nodeId = node;
      const to = text(child(data, ns.types, 'To'));
      if (to !== undefined) out.to = to;
      out.testMessage = !!child(data, ns.types, 'TestMessage');
      Object.assign(out, contentOf(xml, data, ns.basic));
      break;
    }
    case 'GetResponse':
    case 'GetRequest': {
      const sel = child(el, ns.basic, 'MessageTypeSelector');
      if (!sel) throw new SmevEnvelopeError('MessageTypeSelector missing');
      out.signedId = sel.getAttribute('Id') || undefined;
      out.timestamp = text(child(sel, ns.basic, 'Timestamp'))?.trim();
      const nsu = text(child(sel, ns.basic, 'NamespaceURI'));
      if (nsu) out.namespaceUri = nsu.trim();
      const rel = text(child(sel, ns.basic, 'RootElementLocalName'));
      if (rel) out.rootElementLocalName = rel.trim();
      const node = text(child(sel, ns.basic, 'NodeID'));
      if (node !== undefined) out.nodeId = node;
      break;
    }
    case 'Ack': {
      const t = child(el, ns.basic, 'AckTargetMessage');
      if (!t) throw new SmevEnvelopeError('AckTargetMessage missing');
      out.signedId = t.getAttribute('Id') || undefined;
      out.ackTarget = (t.textContent ?? '').trim();
      out.messageId = out.ackTarget;
      const acc = t.getAttribute('accepted');
      out.accepted = acc === null || acc === '' ? true : acc === 'true' || acc === '1';
      break;
    }
    case 'GetStatus': {
      const t = child(el, ns.basic, 'Timestamp');
      if (!t) throw new SmevEnvelopeError('Timestamp missing');
      out.signedId = t.getAttribute('Id') || undefined;
      out.timestamp = (t.textContent ?? '').trim();
      break;
    }
  }
  return out;
}

export interface AsyncStatus {
  originalMessageId?: string;
  category: string;
  details?: string;
  fault?: { type?: string; code?: string; description?: string; smevCode?: string; validationErrors?: string[] };
}

export interface MessageMetadataInfo {
  messageId?: string;
  messageType?: string;
  sender?: string;
  recipient?: string;
  sendingTimestamp?: string;
  deliveryTimestamp?: string;
  status?: string;
}

export type ParsedSmevResponse =
  | { kind: 'fault'; version?: SmevVersion; fault: SmevFault }
  | { kind: 'SendRequestResponse'; version: SmevVersion; messageId?: string; status?: string; metadata: MessageMetadataInfo; metadataXml: string }
  | { kind: 'GetResponseResponse'; version: SmevVersion; empty: true }
  | {
      kind: 'GetResponseResponse';
      version: SmevVersion;
      empty: false;
      /** SenderProvidedResponseData/MessageID — the one to Ack. */
      messageId: string;
      originalMessageId?: string;
      originalTransactionCode?: string;
      content?: string;
      contentRoot?: { ns: string; local: string };
      /** the business element in the parsed response (read it without parsing `content` again) */
      contentElement?: Element;
      asyncStatus?: AsyncStatus;
      rejections?: { code: string; description: string }[];
      requestStatus?: { code: number; description: string };
      /** Id of SenderProvidedResponseData (SIGNED_ASYNC_BY_SMEV = SMEV-generated). */
      providerId?: string;
      /** Id of Response (SMEV-signed). */
      responseId?: string;
      metadata: MessageMetadataInfo;
      hasSmevSignature: boolean;
    }
  | { kind: 'AckResponse'; version?: SmevVersion }
  | { kind: 'GetStatusResponse'; version: SmevVersion; empty: boolean; status?: AsyncStatus };

function metadataInfo(md: Element | undefined, types: string): MessageMetadataInfo {
  if (!md) return {};
  const t = (l: string) => text(child(md, types, l))?.trim();
  const mn = (l: string) => {
    const p = child(md, types, l);
    return p ? text(child(p, types, 'Mnemonic'))?.trim() : undefined;
  };
  return {
    messageId: t('MessageId'),
    messageType: t('MessageType'),
    sender: mn('Sender'),
    recipient: mn('Recipient'),
    sendingTimestamp: t('SendingTimestamp'),
    deliveryTimestamp: t('DeliveryTimestamp'),
    status: t('Status'),
  };
}

function parseAsyncStatus(el: Element, ns: SmevNamespaces): AsyncStatus {
  const out: AsyncStatus = {
    originalMessageId: text(child(el, ns.types, 'OriginalMessageId'))?.trim(),
    category: text(child(el, ns.types, 'StatusCategory'))?.trim() ?? '',
  };
  const d = text(child(el, ns.types, 'StatusDetails'));
  if (d !== undefined) out.details = d;
  const f = child(el, ns.types, 'SmevFault');
  if (f) {
    const xsiType = f.getAttributeNS(XSI_NS, 'type') || undefined;
    const description = text(child(f, ns.basic, 'Description'));
    const ves = children(f, ns.faults, 'ValidationError').map((e) => e.textContent ?? '');
    out.fault = {
      type: xsiType ? xsiType.replace(/^.*:/, '') : undefined,
      code: text(child(f, ns.basic, 'Code'))?.trim(),
      description,
      smevCode: parseSmevCode(description),
      ...(ves.length ? { validationErrors: ves } : {}),
    };
  }
  return out;
}

function parseFault(faultEl: Element): { version?: SmevVersion; fault: SmevFault } {
  const faultcode = text(child(faultEl, null, 'faultcode'))?.trim();
  const faultstring = text(child(faultEl, null, 'faultstring')) ?? '';
  const detail = child(faultEl, null, 'detail');
  const det = detail ? childElements(detail)[0] : undefined;
  if (!det) return { fault: { name: 'UnknownFault', faultstring, faultcode } };
  const info = smevNamespaceInfo(det.namespaceURI);
  const fault: SmevFault = { name: det.localName ?? 'UnknownFault', faultstring, faultcode };
  if (info) fault.version = info.version;
  const extra: Record<string, string> = {};
  const ves: string[] = [];
  for (const c of childElements(det)) {
    const l = c.localName ?? '';
    const v = c.textContent ?? '';
    // Code/Description are in basic (or, leniently, any namespace)
    if (l === 'Code') fault.code = v.trim();
    else if (l === 'Description') fault.description = v;
    else if (l === 'ValidationError') ves.push(v);
    else if (l === 'SignatureVerificationFault') fault.signatureFault = v.trim();
    else if (childElements(c).length === 0) extra[l] = v;
  }
  if (ves.length) fault.validationErrors = ves;
  if (Object.keys(extra).length) fault.extra = extra;
  fault.smevCode = parseSmevCode(fault.description);
  return { version: info?.version, fault };
}

/** Parses a SMEV response (whole envelope, or bare element) for the client. */
/** `doc`: the same text already parsed (parseXml), so that the signature check reads the same tree. */
export function parseSmevResponse(xml: string, doc: Document = parseXml(xml)): ParsedSmevResponse {
  const root = doc.documentElement!;
  let el: Element | undefined;
  if (root.namespaceURI === SOAP_NS && root.localName === 'Envelope') {
    const body = child(root, SOAP_NS, 'Body');
    if (!body) throw new SmevEnvelopeError('soap:Body missing');
    el = childElements(body)[0];
    // an empty Body is what some SMEV deployments answer to Ack (smev3.md §3.5)
    if (!el) return { kind: 'AckResponse' };
  } else el = root;
  if (el.namespaceURI === SOAP_NS && el.localName === 'Fault') {
    const f = parseFault(el);
    return { kind: 'fault', version: f.version, fault: f.fault };
  }
  const info = smevNamespaceInfo(el.namespaceURI);
  if (!info || info.kind !== 'types') throw new SmevEnvelopeError(`not a SMEV response element: {${el.namespaceURI}}${el.localName}`);
  const ns = smevNamespaces(info.version);
  const version = info.version;
  switch (el.localName) {
    case 'SendRequestResponse':
    case 'SendResponseResponse': {
      const md = child(el, ns.types, 'MessageMetadata');
      if (!md) throw new SmevEnvelopeError('MessageMetadata missing');
      const metadata = metadataInfo(md, ns.types);
      return {
        kind: 'SendRequestResponse',
        version,
        messageId: metadata.messageId,
        status: metadata.status,
        metadata,
        metadataXml: outerXmlSubstring(xml, md) ?? '',
      };
    }
    case 'GetResponseResponse': {
      const rm = child(el, ns.types, 'ResponseMessage');
      if (!rm) return { kind: 'GetResponseResponse', version, empty: true };
      const resp = child(rm, ns.types, 'Response');
      if (!resp) throw new SmevEnvelopeError('ResponseMessage/Response missing');
      const data = child(resp, ns.types, 'SenderProvidedResponseData');
      if (!data) throw new SmevEnvelopeError('SenderProvidedResponseData missing');
      const messageId = text(child(data, ns.types, 'MessageID'))?.trim();
      if (!messageId) throw new SmevEnvelopeError('SenderProvidedResponseData/MessageID missing');
      const smevSig = child(rm, ns.types, 'SMEVSignature');
      const out: Extract<ParsedSmevResponse, { kind: 'GetResponseResponse'; empty: false }> = {
        kind: 'GetResponseResponse',
        version,
        empty: false,
        messageId,
        originalMessageId: text(child(resp, ns.types, 'OriginalMessageId'))?.trim(),
        providerId: data.getAttribute('Id') || undefined,
        responseId: resp.getAttribute('Id') || undefined,
        metadata: metadataInfo(child(resp, ns.types, 'MessageMetadata'), ns.types),
        hasSmevSignature: !!smevSig && childElements(smevSig).length > 0,
      };
      const otc = text(child(resp, ns.types, 'OriginalTransactionCode'));
      if (otc !== undefined) out.originalTransactionCode = otc;
      Object.assign(out, contentOf(xml, data, ns.basic));
      const as = child(data, ns.types, 'AsyncProcessingStatus');
      if (as) out.asyncStatus = parseAsyncStatus(as, ns);
      const rej = children(data, ns.types, 'RequestRejected');
      if (rej.length) {
        out.rejections = rej.map((r) => ({
          code: text(child(r, ns.types, 'RejectionReasonCode'))?.trim() ?? '',
          description: text(child(r, ns.types, 'RejectionReasonDescription')) ?? '',
        }));
      }
      const rs = child(data, ns.types, 'RequestStatus');
      if (rs) {
        out.requestStatus = {
          code: Number(text(child(rs, ns.types, 'StatusCode'))),
          description: text(child(rs, ns.types, 'StatusDescription')) ?? '',
        };
      }
      return out;
    }
    case 'AckResponse':
      return { kind: 'AckResponse', version };
    case 'GetStatusResponse': {
      const m = child(el, ns.types, 'SmevAsyncProcessingMessage');
      const d = m ? child(m, ns.types, 'AsyncProcessingStatusData') : undefined;
      const s = d ? child(d, ns.types, 'AsyncProcessingStatus') : undefined;
      return s ? { kind: 'GetStatusResponse', version, empty: false, status: parseAsyncStatus(s, ns) } : { kind: 'GetStatusResponse', version, empty: true };
    }
    default:
      throw new SmevEnvelopeError(`unexpected SMEV response element: ${el.localName}`);
  }
}

export { XmlParseError };
