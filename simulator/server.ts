import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { v1 as uuidv1, v4 as uuidv4, validate as uuidValidate, version as uuidVersion } from 'uuid';
import type { Logger } from '../connectors/log.ts';
import { signXml, verifyXml, type Signer } from '../connectors/smev3/signature.ts';
import { generateTestKeyPair, loadCertificate, loadPrivateKey, type GostCertificate, type GostProvider } from '../connectors/smev3/crypto/index.ts';
import { buildImportResult } from '../transformers/gis/result.ts';
import { loadSchemaSet, validate, type SchemaSet } from '../connectors/xsd/validator.ts';
import {
  buildAckResponse, buildFault, buildGetResponseResponse, buildGetStatusResponse, buildSendRequestResponse, parseSmevRequest,
  type FaultParams, type ParsedSmevRequest, type SmevVersion,
} from '../transformers/smev/envelope.ts';
import { GIS_PAYMENTS_1_0_0 } from '../transformers/gis/namespaces.ts';
import type { PayeeRecord } from '../transformers/payment.ts';
import { GisPayments, ownCopy } from './gis.ts';
import { SimRegistry, type RegistryOptions } from './registry.ts';
import { buildRegistryResponse, parseRegistryRequest, GIS_PAYEE_REGISTRY_1_0_0 } from '../transformers/gis/registry.ts';
import { parseXml } from '../transformers/smev/xml.ts';

export interface SimulatorOptions {
  host?: string;
  port?: number;
  smev: Signer;
  /** ГИС ЖКХ signs its responses (SenderInformationSystemSignature) with this */
  gis: Signer;
  provider: GostProvider;
  /** registered information systems: certificate → mnemonic */
  clients: { cert: GostCertificate; mnemonic: string }[];
  payees: PayeeRecord[];
  /** time ГИС takes to answer a packet */
  latencyMs?: number;
  /** a MessageID whose UUID v1 time is older than this is StaleMessageId (default 2 days) */
  staleMessageIdMs?: number;
  /** an unacknowledged message is delivered again after this long (default 30 s) */
  redeliverAfterMs?: number;
  /** allowed difference of GetResponse/GetStatus Timestamp from the simulator's clock (default 30 min) */
  timestampSkewMs?: number;
  acceptUnknownPayees?: boolean;
  /** answer as MTOM multipart/related (as SMEV's Apache CXF does) */
  mtom?: boolean;
  /** the payee registry ГИС exports (ВС 95796): generated organisations (default 20 000) + `payees` kept fixed */
  registry?: RegistryOptions;
  log: Logger;
}

/** A fault the simulator returns for the next `times` calls of an operation (tests, chaos). */
export interface Injection {
  operation: 'SendRequest' | 'GetResponse' | 'Ack' | 'any';
  /** any SMEV fault element name, e.g. SMEVFailure, DestinationOverflow, StaleMessageId, AccessDenied */
  fault?: string;
  /** answer HTTP 503 with an HTML body, drop the connection before or after processing, or stall this long (ms) */
  http?: 503 | 'disconnect-after-commit' | 'disconnect' | { delayMs: number };
  /** sign the reply with a key SMEV's clients do not trust */
  untrustedSignature?: boolean;
  times: number;
}

/** A ГИС-level answer for the next packets: a packet-level error such as EXP001000. */
export interface GisInjection {
  packetError: { code: string; description: string };
  times: number;
}

const FAULT_TEXT: Record<string, { smev: string; text: string; extra?: Record<string, string> }> = {
  SMEVFailure: { smev: 'SMEV-500', text: 'Внутренняя ошибка СМЭВ' },
  DestinationOverflow: { smev: 'SMEV-402', text: 'Очередь получателя переполнена', extra: { MessageBrokerAddress: 'sim', DestinationName: 'GISGKH' } },
  StaleMessageId: { smev: 'SMEV-403', text: 'Идентификатор сообщения содержит устаревшую метку времени' },
  MessageIsAlreadySent: { smev: 'SMEV-403', text: 'Сообщение с таким идентификатором уже было отправлено' },
  AccessDenied: { smev: 'SMEV-104', text: 'Доступ запрещён' },
  SenderIsNotRegistered: { smev: 'SMEV-101', text: 'Отправитель не зарегистрирован' },
};

function injectedFault(name: string): Omit<FaultParams, 'version'> {
  const f = FAULT_TEXT[name] ?? { smev: 'SMEV-500', text: name };
  return { name, code: `SIM:${name}`, description: `${f.smev}:${f.text}`, faultstring: f.text, extra: f.extra };
}

interface Queued {
  messageId: string;
  originalMessageId: string;
  recipient: string;
  content?: string;
  asyncStatus?: { category: string; details: string; fault: { type: string; code: string; description: string; validationErrors: string[] } };
  createdAt: Date;
  deliveredAt?: Date;
}

const TARGET: Record<string, string> = {
  SendRequest: 'SenderProvidedRequestData', GetResponse: 'MessageTypeSelector', GetRequest: 'MessageTypeSelector',
  Ack: 'AckTargetMessage', GetStatus: 'Timestamp', SendResponse: 'SenderProvidedResponseData',
};

class SimFault extends Error {
  constructor(readonly params: Omit<FaultParams, 'version'>) {
    super(params.faultstring);
  }
}

/**
 * SMEV 3 + ГИС ЖКХ test double: speaks the SMEV message-exchange protocol (versions 1.1/1.2/1.3 by the
 * request's namespace), validates envelopes against the XSDs, checks the caller's signature, signs its
 * own replies, and answers ГИС payment packets asynchronously through the response queue.
 */
export class SmevSimulator {
  readonly gis: GisPayments;
  private registryInstance?: SimRegistry;
  private server?: Server;
  private sent = new Map<string, Set<string>>();
  private queues = new Map<string, Queued[]>();
  /** GetStatus queue per information system: processing statuses of its requests, each returned once */
  private statuses = new Map<string, { originalMessageId: string; category: string; details?: string }[]>();
  private schemas = new Map<string, Promise<SchemaSet>>();
  private gisSchema = loadSchemaSet('gis-payments-1.0.0');
  private registrySchema = loadSchemaSet('gis-payee-registry-1.0.0');
  private injections: Injection[] = [];
  private gisInjections: GisInjection[] = [];
  private rogue?: Signer;
  private timers = new Set<NodeJS.Timeout>();
  readonly stats = { calls: 0, faults: 0, sendRequests: 0, responsesQueued: 0, acks: 0 };
  /**
   * Called when SMEV has taken a SendRequest (the MessageID is recorded, ГИС will answer it), before the
   * reply is written: the chaos suite kills the bus here to crash it "after SendRequest, before its commit".
   */
  onSendRequestTaken?: (messageId: string) => void;
  port = 0;

  constructor(private o: SimulatorOptions) {
    // ГИС also knows every payee of the registry it exports (once that registry has been generated)
    this.gis = new GisPayments(o.payees, { acceptUnknownPayees: o.acceptUnknownPayees, knows: (bic, account) => !!this.registryInstance?.has(bic, account) });
  }

  /** the simulated payee registry, generated on first use (deterministic from its seed) */
  get registry(): SimRegistry {
    this.registryInstance ??= new SimRegistry({ fixed: this.o.payees, ...this.o.registry });
    return this.registryInstance;
  }

  /** How long ГИС takes to answer a packet from now on (ms; tests that need the answer to come after a retry). */
  setLatency(ms: number): void {
    this.o.latencyMs = ms;
  }

  inject(i: Injection): void {
    this.injections.push({ ...i });
  }

  injectGis(i: GisInjection): void {
    this.gisInjections.push({ ...i });
  }

  async start(): Promise<number> {
    this.server = createServer((req, res) => void this.onRequest(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      // a restarted simulator (stop(), then start()) listens on the port it had, so clients find it again
      this.server!.listen(this.port || (this.o.port ?? 7575), this.o.host ?? '127.0.0.1', () => resolve());
    });
    this.port = (this.server!.address() as { port: number }).port;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Messages waiting in a recipient's response queue (delivered or not, until acknowledged). */
  pending(mnemonic?: string): number {
    return [...this.queues.entries()].filter(([k]) => !mnemonic || k === mnemonic).reduce((n, [, q]) => n + q.length, 0);
  }

  private takeInjection(op: string): Injection | undefined {
    // an untrusted signature is injected into the next reply that carries a message (see onRequest), not into an empty poll
    const i = this.injections.find((x) => x.times > 0 && !x.untrustedSignature && (x.operation === op || x.operation === 'any'));
    if (i) i.times--;
    return i;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url?.startsWith('/sim/state')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ stats: this.stats, accepted: Object.fromEntries(this.gis.accepted), pending: this.pending() }));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const xml = Buffer.concat(chunks).toString('utf8');
    this.stats.calls++;
    let version: SmevVersion = '1.2';
    let after: (() => void) | undefined;
    try {
      // parsed once: the envelope reader and the signature check read the same tree
      const { parsed, doc } = parseRequestOrFault(xml);
      version = parsed.version;
      const inj = this.takeInjection(parsed.operation);
      if (inj?.http === 503) {
        res.writeHead(503, { 'content-type': 'text/html' }).end('<html><body>503 Service Unavailable</body></html>');
        return;
      }
      if (inj?.http === 'disconnect') {
        req.socket.destroy();
        return;
      }
      if (inj?.http && typeof inj.http === 'object') await new Promise((r) => setTimeout(r, (inj.http as { delayMs: number }).delayMs));
      if (inj?.fault) throw new SimFault(injectedFault(inj.fault));
      await this.checkSchema(xml, version);
      const mnemonic = this.checkSignature(doc, parsed.operation);
      const out = await this.dispatch(parsed, mnemonic, xml);
      if (inj?.http === 'disconnect-after-commit') {
        // SMEV took the message (and ГИС will answer it); only the reply is lost on the way back
        req.socket.destroy();
        out.after?.();
        return;
      }
      after = out.after;
      let body = out.xml;
      if (body.includes('Id="SIGNED_BY_SMEV"') && /<(?:\w+:)?MessageMetadata\b/.test(body)) {
        const u = this.injections.find((x) => x.times > 0 && x.untrustedSignature && (x.operation === parsed.operation || x.operation === 'any'));
        if (u) { u.times--; body = this.resignUntrusted(body); }
      }
      this.reply(res, 200, body);
    } catch (e) {
      this.stats.faults++;
      const f = e instanceof SimFault ? e.params : { name: 'SMEVFailure', code: 'SIM:INTERNAL', description: `SMEV-500:${(e as Error).message}`, faultstring: (e as Error).message };
      if (!(e instanceof SimFault)) this.o.log.error('simulator internal error', { err: e });
      this.reply(res, 500, buildFault({ version, faultcode: 'soap:Server', ...f }));
    }
    after?.();
  }

  /** text/xml, or MTOM multipart/related the way Apache CXF (SMEV) sends it */
  private reply(res: ServerResponse, status: number, xml: string): void {
    if (!this.o.mtom) {
      res.writeHead(status, { 'content-type': 'text/xml; charset=UTF-8' });
      res.end(xml);
      return;
    }
    const boundary = `uuid:${uuidv1()}`;
    res.writeHead(status, { 'content-type': `multipart/related; type="application/xop+xml"; boundary="${boundary}"; start="<root.message@cxf.apache.org>"; start-info="text/xml"` });
    res.end(`--${boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="text/xml"\r\nContent-Transfer-Encoding: binary\r\n` +
      `Content-ID: <root.message@cxf.apache.org>\r\n\r\n${xml}\r\n--${boundary}--`);
  }

  /** the same reply, its SMEV signature replaced by one made with a key nobody trusts */
  private resignUntrusted(xml: string): string {
    const m = /<ns2:SMEVSignature>[\s\S]*<\/ns2:SMEVSignature>/.exec(xml);
    if (!m) return xml;
    const id = xml.includes('Id="SIGNED_BY_SMEV"') ? 'SIGNED_BY_SMEV' : undefined;
    if (!id) return xml;
    const blank = xml.replace(m[0], '<ns2:SMEVSignature></ns2:SMEVSignature>');
    this.rogue ??= (() => {
      const pair = generateTestKeyPair({ commonName: 'not SMEV' });
      return { key: loadPrivateKey(pair.keyPem), cert: loadCertificate(pair.certPem), provider: this.o.provider };
    })();
    return signXml(blank, { targetId: id, containerLocalName: 'SMEVSignature', signer: this.rogue });
  }

  private async checkSchema(xml: string, version: SmevVersion): Promise<void> {
    let p = this.schemas.get(version);
    if (!p) this.schemas.set(version, (p = loadSchemaSet(`smev-${version}` as 'smev-1.2')));
    const r = await validate(xml, await p);
    if (!r.valid) {
      throw new SimFault({
        name: 'InvalidContent', code: 'SIM:XSD', faultstring: 'Сообщение не соответствует схеме',
        description: 'SMEV-403:Сообщение не соответствует XSD-схеме СМЭВ',
        validationErrors: r.errors.slice(0, 10).map((x) => (x.line ? `line ${x.line}: ` : '') + x.message),
      });
    }
  }

  /** Verifies the caller's ЭП-ОВ; returns the mnemonic of the registered information system. */
  private checkSignature(doc: Document, operation: string): string {
    const v = verifyXml(doc, { containerLocalName: 'CallerInformationSystemSignature', targetLocalName: TARGET[operation], provider: this.o.provider });
    if (!v.ok) {
      const enumValue = v.fault ?? 'SignatureIsInvalid';
      throw new SimFault({
        name: 'SignatureVerificationFault', code: 'SIM:SPS', signatureFault: enumValue,
        description: `SMEV-100:${v.reason ?? enumValue}`, faultstring: v.reason ?? enumValue,
      });
    }
    const client = this.o.clients.find((c) => v.certificate && Buffer.compare(c.cert.der, v.certificate.der) === 0);
    if (!client) {
      throw new SimFault({ name: 'SenderIsNotRegistered', faultstring: 'Отправитель не зарегистрирован в СМЭВ', description: 'SMEV-101:Сертификат ЭП-ОВ не зарегистрирован' });
    }
    return client.mnemonic;
  }

  private async dispatch(p: ParsedSmevRequest, mnemonic: string, xml: string): Promise<{ xml: string; after?: () => void }> {
    switch (p.operation) {
      case 'SendRequest': return this.sendRequest(p, mnemonic);
      case 'GetResponse': return { xml: this.getResponse(p, mnemonic) };
      case 'Ack': return { xml: this.ack(p, mnemonic) };
      case 'GetStatus': {
        this.checkTimestamp(p.timestamp);
        const st = this.statuses.get(mnemonic)?.shift();
        return { xml: this.signed(buildGetStatusResponse({ version: p.version, status: st })) };
      }
      default:
        throw new SimFault({ name: 'InvalidContent', faultstring: `операция ${p.operation} не поддерживается симулятором`, description: `SMEV-403:операция ${p.operation} не поддерживается` });
    }
    void xml;
  }

  private sendRequest(p: ParsedSmevRequest, mnemonic: string): { xml: string; after: () => void } {
    const id = p.messageId ?? '';
    if (!uuidValidate(id) || uuidVersion(id) !== 1 || id !== id.toLowerCase()) {
      throw new SimFault({ name: 'InvalidMessageIdFormat', faultstring: `MessageID ${id} не является UUID версии 1` });
    }
    const age = Date.now() - uuidV1Time(id);
    if (age > (this.o.staleMessageIdMs ?? 2 * 86_400_000)) {
      throw new SimFault({ name: 'StaleMessageId', faultstring: `MessageID ${id} содержит устаревшую метку времени` });
    }
    const sent = this.sent.get(mnemonic) ?? new Set<string>();
    this.sent.set(mnemonic, sent);
    if (sent.has(id)) throw new SimFault({ name: 'MessageIsAlreadySent', faultstring: `Сообщение ${id} уже было отправлено` });
    const root = p.contentRoot;
    const b = GIS_PAYMENTS_1_0_0;
    const isRegistry = root?.ns === GIS_PAYEE_REGISTRY_1_0_0.ns && root.local === GIS_PAYEE_REGISTRY_1_0_0.requestRoot;
    if (!root || (!isRegistry && (root.ns !== b.payments || root.local !== 'ImportNotificationsOfOrderExecutionRequest'))) {
      throw new SimFault({
        name: 'BusinessDataTypeIsNotSupported', faultstring: 'Вид сведений не зарегистрирован', description: 'SMEV-102:Вид сведений не зарегистрирован в СМЭВ',
        extra: { RootElementLocalName: root?.local ?? '', RootElementNamespaceURI: root?.ns ?? '' },
      });
    }
    sent.add(ownCopy(id)); // not a slice of the request: the set would keep every request alive
    this.stats.sendRequests++;
    this.onSendRequestTaken?.(id);
    const reply = this.signed(buildSendRequestResponse({ version: p.version, messageId: id, sender: mnemonic, recipient: 'GISGKH', sendingTimestamp: new Date() }));
    // ГИС works asynchronously: validation and the answer come later through the response queue
    const after = () => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.process(id, mnemonic, p.content ?? '', p.contentElement);
      }, this.o.latencyMs ?? 50);
      this.timers.add(t);
    };
    return { xml: reply, after };
  }

  private async process(originalMessageId: string, mnemonic: string, content: string, contentElement?: Element): Promise<void> {
    const q = this.queues.get(mnemonic) ?? [];
    this.queues.set(mnemonic, q);
    const base = { messageId: uuidv1(), originalMessageId, recipient: mnemonic, createdAt: new Date() };
    const isRegistry = content.includes(GIS_PAYEE_REGISTRY_1_0_0.ns);
    const check = await validate(content, await (isRegistry ? this.registrySchema : this.gisSchema));
    const statuses = this.statuses.get(mnemonic) ?? [];
    this.statuses.set(mnemonic, statuses);
    statuses.push(check.valid
      ? { originalMessageId, category: 'requestIsAcceptedBySmev' }
      : { originalMessageId, category: 'requestIsRejectedBySmev', details: 'Бизнес-данные сообщения не соответствуют схеме' });
    if (!check.valid) {
      const details = `Бизнес-данные сообщения не соответствуют схеме, зарегистрированной в СМЭВ. MessageId = ${originalMessageId}`;
      q.push({ ...base, asyncStatus: { category: 'requestIsRejectedBySmev', details,
        fault: { type: 'InvalidContent', code: '028122', description: `SMEV-403: ${details}`, validationErrors: check.errors.slice(0, 10).map((e) => e.message) } } });
    } else {
      const g = isRegistry ? undefined : this.gisInjections.find((x) => x.times > 0);
      if (g) g.times--;
      let answer: string;
      if (isRegistry) {
        const req = parseRegistryRequest(content);
        answer = buildRegistryResponse(this.registry.answer(req.pageSize, req.pageKey, () => uuidv4()));
      } else {
        answer = g ? buildImportResult({ packetError: g.packetError }) : this.gis.answer(contentElement ?? content);
      }
      q.push({ ...base, content: answer });
    }
    this.stats.responsesQueued++;
  }

  private checkTimestamp(ts: string | undefined): void {
    const t = ts ? Date.parse(ts) : NaN;
    if (!Number.isFinite(t) || Math.abs(Date.now() - t) > (this.o.timestampSkewMs ?? 30 * 60_000)) {
      throw new SimFault({ name: 'InvalidContent', code: 'SIM:TS', faultstring: `Метка времени сообщения ${ts} не действительна`,
        description: `SMEV-403:Метка времени сообщения ${ts} не действительна` });
    }
  }

  private getResponse(p: ParsedSmevRequest, mnemonic: string): string {
    this.checkTimestamp(p.timestamp);
    const q = this.queues.get(mnemonic) ?? [];
    const now = Date.now();
    const redeliver = this.o.redeliverAfterMs ?? 30_000;
    const m = q.find((x) => !x.deliveredAt || now - x.deliveredAt.getTime() >= redeliver);
    if (!m) return buildGetResponseResponse({ version: p.version }).xml;
    m.deliveredAt = new Date();
    const built = buildGetResponseResponse({
      version: p.version,
      message: {
        originalMessageId: m.originalMessageId, messageId: m.messageId, content: m.content, asyncStatus: m.asyncStatus,
        sender: m.asyncStatus ? 'SMEV' : 'GISGKH', recipient: mnemonic, sendingTimestamp: m.createdAt, deliveryTimestamp: m.deliveredAt,
      },
    });
    let xml = built.xml;
    if (m.content) xml = signXml(xml, { targetId: 'SIGNED_BY_PROVIDER', containerLocalName: 'SenderInformationSystemSignature', signer: this.o.gis });
    return this.signed({ ...built, xml });
  }

  private ack(p: ParsedSmevRequest, mnemonic: string): string {
    const q = this.queues.get(mnemonic) ?? [];
    const i = q.findIndex((x) => x.messageId === p.ackTarget && x.deliveredAt);
    if (i < 0) {
      throw new SimFault({ name: 'TargetMessageIsNotFound', code: 'SIM:DAS', faultstring: `Сообщение ${p.ackTarget} не найдено среди неподтверждённых.`,
        description: `SMEV-501:Сообщение ${p.ackTarget} не найдено среди неподтверждённых.` });
    }
    q.splice(i, 1);
    this.stats.acks++;
    return buildAckResponse({ version: p.version }).xml;
  }

  private signed(b: { xml: string; signedId?: string; containerLocalName?: string }): string {
    if (!b.signedId || !b.containerLocalName) return b.xml;
    return signXml(b.xml, { targetId: b.signedId, containerLocalName: b.containerLocalName, signer: this.o.smev });
  }
}

function parseRequestOrFault(xml: string): { parsed: ParsedSmevRequest; doc: Document } {
  try {
    const doc = parseXml(xml);
    return { parsed: parseSmevRequest(xml, doc), doc };
  } catch (e) {
    throw new SimFault({ name: 'InvalidContent', code: 'SIM:PARSE', faultstring: (e as Error).message, description: `SMEV-403:${(e as Error).message}`,
      validationErrors: [(e as Error).message] });
  }
}

/** Milliseconds since the epoch encoded in a version-1 UUID. */
export function uuidV1Time(id: string): number {
  const h = id.replace(/-/g, '');
  const ticks = (BigInt('0x' + h.slice(13, 16)) << 48n) | (BigInt('0x' + h.slice(8, 12)) << 32n) | BigInt('0x' + h.slice(0, 8));
  return Number(ticks / 10_000n) - 12_219_292_800_000;
}
