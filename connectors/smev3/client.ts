import type { Store } from '../store/db.ts';
import type { Logger } from '../log.ts';
import { signXml, verifyXml, type Signer } from './signature.ts';
import type { GostCertificate, GostProvider } from './crypto/index.ts';
import {
  buildSendRequest, buildSendRequestCanonical, buildGetResponseRequest, buildGetStatusRequest, buildAckRequest, parseSmevResponse,
  type BuiltCanonicalRequest,
} from '../../transformers/smev/envelope.ts';
import type { XmlSink } from '../../transformers/smev/canonical.ts';
import { parseXml } from '../../transformers/smev/xml.ts';
import type { SmevFault } from '../../transformers/smev/faults.ts';

export type SmevVersion = '1.1' | '1.2' | '1.3';
type Parsed = ReturnType<typeof parseSmevResponse>;

export type CallResult =
  | { kind: 'ok'; parsed: Parsed; requestXml: string; responseXml: string }
  | { kind: 'fault'; fault: SmevFault; requestXml: string; responseXml: string }
  /** no usable answer: connection refused or reset, timeout, HTTP error without a SOAP fault */
  | { kind: 'transport'; error: string; httpStatus?: number; requestXml: string; responseXml?: string }
  /** an answer whose SMEV signature did not verify: stored, not used */
  | { kind: 'untrusted'; reason: string; parsed: Parsed; requestXml: string; responseXml: string };

export interface SmevClientOptions {
  endpoint: string;
  version: SmevVersion;
  signer: Signer;
  trusted: GostCertificate[];
  provider: GostProvider;
  timeoutMs: number;
  testMessage: boolean;
  store: Store;
  log: Logger;
}

/** The SMEV 3 channel adapter: builds, signs, posts, records every message both ways, verifies SMEV's signature. */
export class SmevClient {
  calls = 0;
  untrusted = 0;

  constructor(private o: SmevClientOptions) {}

  get version(): SmevVersion {
    return this.o.version;
  }

  sendRequest(messageId: string, content: string, packetId?: number): Promise<CallResult> {
    const env = buildSendRequest({ version: this.o.version, messageId, content, testMessage: this.o.testMessage });
    return this.call('SendRequest', env, { messageId, packetId, verify: { container: 'SMEVSignature', target: 'MessageMetadata' } });
  }

  /**
   * A SendRequest whose SenderProvidedRequestData is written in SMEV-canonical form by `writeContent` (this
   * client's SMEV version and test flag): check `content`, then hand it to sendBuilt — signed without a re-parse.
   */
  buildSendRequest(messageId: string, writeContent: (w: XmlSink) => void): BuiltCanonicalRequest {
    return buildSendRequestCanonical({ version: this.o.version, messageId, writeContent, testMessage: this.o.testMessage });
  }

  sendBuilt(env: BuiltCanonicalRequest, messageId: string, packetId?: number): Promise<CallResult> {
    return this.call('SendRequest', env, { messageId, packetId, verify: { container: 'SMEVSignature', target: 'MessageMetadata' } });
  }

  getResponse(): Promise<CallResult> {
    const env = buildGetResponseRequest({ version: this.o.version, timestamp: new Date() });
    return this.call('GetResponse', env, { verify: { container: 'SMEVSignature', target: 'Response' } });
  }

  /** The next processing status of one of our requests (or an empty answer); SMEV's signature is checked when present. */
  getStatus(): Promise<CallResult> {
    const env = buildGetStatusRequest({ version: this.o.version, timestamp: new Date() });
    return this.call('GetStatus', env, { verify: { container: 'SMEVSignature', target: 'AsyncProcessingStatusData' } });
  }

  ack(messageId: string, accepted: boolean): Promise<CallResult> {
    const env = buildAckRequest({ version: this.o.version, messageId, accepted });
    return this.call('Ack', env, { messageId });
  }

  private async call(
    operation: string,
    env: { xml: string; signedId: string; containerLocalName: string; transformed?: string },
    opts: { messageId?: string; packetId?: number; verify?: { container: string; target: string } },
  ): Promise<CallResult> {
    this.calls++;
    const requestXml = signXml(env.xml, { targetId: env.signedId, containerLocalName: env.containerLocalName, signer: this.o.signer, transformed: env.transformed });
    const started = Date.now();
    let result: CallResult;
    let httpStatus: number | undefined;
    let responseXml: string | undefined;
    try {
      const res = await fetch(this.o.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=UTF-8', soapaction: `"urn:${operation}"` },
        body: Buffer.from(requestXml, 'utf8'), // a Buffer: undici would otherwise copy the string to check it is well-formed UTF-16
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      httpStatus = res.status;
      const raw = Buffer.from(await res.arrayBuffer());
      responseXml = soapPart(raw, res.headers.get('content-type') ?? '');
      if (!responseXml.includes('Envelope')) {
        result = { kind: 'transport', error: `HTTP ${res.status} without a SOAP envelope`, httpStatus, requestXml, responseXml };
      } else {
        // parsed once: the reader and the signature check read the same tree
        const doc = parseXml(responseXml);
        const parsed = parseSmevResponse(responseXml, doc);
        if (parsed.kind === 'fault') {
          result = { kind: 'fault', fault: parsed.fault, requestXml, responseXml };
        } else if (res.status >= 500) {
          result = { kind: 'transport', error: `HTTP ${res.status}`, httpStatus, requestXml, responseXml };
        } else {
          const needsCheck = opts.verify && !((parsed.kind === 'GetResponseResponse' || parsed.kind === 'GetStatusResponse') && parsed.empty);
          const v = needsCheck
            ? verifyXml(doc, { containerLocalName: opts.verify!.container, targetLocalName: opts.verify!.target, trusted: this.o.trusted, provider: this.o.provider })
            : { ok: true as const };
          if (!v.ok) {
            this.untrusted++;
            result = { kind: 'untrusted', reason: `SMEV signature: ${'fault' in v && v.fault ? v.fault + ': ' : ''}${'reason' in v ? v.reason : ''}`, parsed, requestXml, responseXml };
          } else {
            result = { kind: 'ok', parsed, requestXml, responseXml };
          }
        }
      }
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      const error = err.name === 'TimeoutError' ? `timeout after ${this.o.timeoutMs} ms` : `${err.message}${err.cause?.code ? ` (${err.cause.code})` : ''}`;
      result = { kind: 'transport', error, httpStatus, requestXml, responseXml };
    }
    const ms = Date.now() - started;
    const status = result.kind === 'ok' ? 'ok' : result.kind === 'fault' ? 'fault' : result.kind === 'untrusted' ? 'rejected' : 'error';
    const error = result.kind === 'fault' ? `${result.fault.name}: ${result.fault.description ?? result.fault.faultstring}`
      : result.kind === 'transport' || result.kind === 'untrusted' ? ('error' in result ? result.error : result.reason) : null;
    const msgId = opts.messageId ?? (result.kind === 'ok' && result.parsed.kind === 'GetResponseResponse' && !result.parsed.empty ? result.parsed.messageId : null);
    // an empty queue poll is not worth a row; everything else is kept verbatim, signed, both ways
    const emptyPoll = result.kind === 'ok' && (result.parsed.kind === 'GetResponseResponse' || result.parsed.kind === 'GetStatusResponse') && result.parsed.empty;
    if (!emptyPoll) {
      await this.o.store.query(
        `INSERT INTO smev_messages (direction, operation, message_id, packet_id, http_status, status, error, request_xml, response_xml, duration_ms)
         VALUES ('out', $1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [operation, msgId, opts.packetId ?? null, httpStatus ?? null, status, error, requestXml, responseXml ?? null, ms]);
    }
    this.o.log.debug('smev call', { operation, messageId: msgId, packetId: opts.packetId, status, ms, error });
    return result;
  }
}

/** The SOAP part of a response: plain text/xml, or the root part of an MTOM multipart/related body. */
export function soapPart(body: Buffer, contentType: string): string {
  const m = /multipart\/related/i.test(contentType) ? /boundary="?([^";]+)"?/i.exec(contentType) : null;
  if (!m) return body.toString('utf8');
  const text = body.toString('latin1');
  const parts = text.split(`--${m[1]}`).slice(1).filter((p) => !p.startsWith('--'));
  for (const part of parts) {
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) continue;
    const head = part.slice(0, sep);
    if (/application\/xop\+xml|text\/xml/i.test(head)) {
      return Buffer.from(part.slice(sep + 4).replace(/\r\n$/, ''), 'latin1').toString('utf8');
    }
  }
  return body.toString('utf8');
}
