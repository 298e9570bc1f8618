/**
 * `gkh-bus smev …` — integrator tools for SMEV 3 XML (smev3.md §7, §8):
 *   transform  print the exact bytes that get digested for an element (or their Streebog-256 digest)
 *   verify     check every ds:Signature in an envelope, with per-signature details
 *   sign       sign an element the SMEV way and put the signature into its (empty) container
 *
 * Exit codes: 0 success, 1 failure (bad XML, signature does not verify, signing impossible), 2 usage error
 * (bad options, missing or unreadable input files).
 */
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  createProvider,
  loadCertificate,
  loadPrivateKey,
  type GostCertificate,
  type GostProvider,
} from '../connectors/smev3/crypto/index.ts';
import {
  ALG,
  DSIG_NS,
  signXml,
  verifySignatureElement,
  type SignatureFault,
  type VerifyResult,
} from '../connectors/smev3/signature.ts';
import { findElementsById, parseXmlStrict, smevTransform } from '../transformers/smev/transform.ts';

export const SMEV_HELP = `Usage: gkh-bus smev <transform|verify|sign> [options]

Integrator tools for SMEV 3 XML (GOST XMLDSig, SMEV transform urn://smev-gov-ru/xmldsig/transform).
  transform   print the exact bytes digested for an element (SMEV transform output) or their digest
  verify      check every ds:Signature in an envelope and explain each result
  sign        sign an element the SMEV way and put the signature into its container
Run "gkh-bus smev <subcommand> --help" for its options.
Exit codes: 0 OK, 1 failure, 2 usage error (bad options, missing or unreadable files).`;

export const SMEV_TRANSFORM_HELP = `Usage: gkh-bus smev transform <file> [--id <Id>] [--digest]

Prints to stdout the SMEV transform output (urn://smev-gov-ru/xmldsig/transform, after exc-c14n) of the
element with Id="<Id>", or of the document element: UTF-8, no XML declaration, no trailing newline —
exactly the bytes a ds:Reference digests.
  --id <Id>    the element to transform (must be the only element carrying that Id)
  --digest     print the base64 GOST R 34.11-2012-256 (Streebog) digest of those bytes instead
               (the value of ds:DigestValue), followed by a newline`;

export const SMEV_VERIFY_HELP = `Usage: gkh-bus smev verify <file> [--trust <cert>]... [--at <time>] [--json]

Finds EVERY ds:Signature in the document (CallerInformationSystemSignature, SMEVSignature,
SenderInformationSystemSignature, PersonalSignature, …) and checks each: SMEV profile, Reference target
(it must point at exactly one element with that Id; for the known containers also at the element the
container belongs to), digest of the SMEV transform output, SignatureValue, certificate validity.
Per signature it prints the container path, Reference URI and target, computed and stated digests,
certificate subject/serial/validity, and OK or the fault code and reason.
  --trust <cert>   accept only these certificates (PEM, DER or base64 DER file); repeatable
  --at <time>      check certificate validity at this ISO 8601 time instead of now
  --json           print a JSON array of results instead of text
Exit code 0 only if there is at least one signature and all of them verify; 1 otherwise.`;

export const SMEV_SIGN_HELP = `Usage: gkh-bus smev sign <file> --key <pem> --cert <pem|der> [--id <Id>] [--container <localName>] [--out <file>]

Signs the element with Id="<Id>" the SMEV way (detached, Reference transforms [exc-c14n, SMEV transform],
GOST R 34.10-2012-256 / 34.11-2012-256, certificate in KeyInfo) and places the ds:Signature in the
container element, which must exist and be empty. Prints the signed document (or writes --out).
  --key <pem>            unencrypted PKCS#8 GOST R 34.10-2012-256 private key
  --cert <pem|der>       the key's X.509 certificate
  --id <Id>              element to sign (default: the single element carrying an Id attribute among
                         SenderProvidedRequestData, SenderProvidedResponseData, MessageTypeSelector,
                         AckTargetMessage, Timestamp)
  --container <name>     local name of the signature container (default CallerInformationSystemSignature)
  --out <file>           write the signed document to <file> instead of stdout`;

const SUB_HELPS: Record<string, string> = { transform: SMEV_TRANSFORM_HELP, verify: SMEV_VERIFY_HELP, sign: SMEV_SIGN_HELP };

/** Elements that the caller (ЭП-ОВ) signs, smev3.md §4. */
export const CALLER_SIGNED = ['SenderProvidedRequestData', 'SenderProvidedResponseData', 'MessageTypeSelector', 'AckTargetMessage', 'Timestamp'];

/** Container local name → local names of elements its signature may cover (smev3.md §4). */
const EXPECTED_TARGETS: Record<string, { names: string[]; personal?: boolean }> = {
  CallerInformationSystemSignature: { names: CALLER_SIGNED },
  SMEVSignature: { names: ['MessageMetadata', 'Request', 'Response', 'Cancel', 'AsyncProcessingStatusData'] },
  SenderInformationSystemSignature: { names: ['SenderProvidedRequestData', 'SenderProvidedResponseData'] },
  PersonalSignature: { names: [], personal: true },
};

class UsageError extends Error {}
class Failure extends Error {}

const ELEMENT_NODE = 1;

function children(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n as Element);
  return out;
}

function walk(root: Element, visit: (e: Element) => void): void {
  visit(root);
  for (const c of children(root)) walk(c, visit);
}

/** `/soap:Envelope/soap:Body/ns2:X[2]/…` — qualified names as written, position only where siblings share the name. */
export function elementPath(el: Element): string {
  const parts: string[] = [];
  for (let e: Element | null = el; e && e.nodeType === ELEMENT_NODE; e = e.parentNode as Element | null) {
    const parent = e.parentNode;
    let part = e.nodeName;
    if (parent && parent.nodeType === ELEMENT_NODE) {
      const same = children(parent as Element).filter((s) => s.nodeName === e!.nodeName);
      if (same.length > 1) part += `[${same.indexOf(e) + 1}]`;
    }
    parts.unshift(part);
  }
  return `/${parts.join('/')}`;
}

function readInput(file: string, what = 'file'): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new UsageError(`${file}: cannot read ${what}: ${why}`);
  }
}

function readXml(file: string): { xml: string; doc: Document } {
  const xml = readInput(file).toString('utf8');
  try {
    return { xml, doc: parseXmlStrict(xml) };
  } catch (e) {
    throw new Failure(`${file}: ${(e as Error).message}`);
  }
}

function readCertificate(file: string): GostCertificate {
  const buf = readInput(file, 'certificate');
  const text = buf.toString('latin1');
  // PEM or bare base64 as text; anything else is DER
  const input = /^\s*-----BEGIN/.test(text) || /^[A-Za-z0-9+/=\s]+$/.test(text) ? text : buf;
  try {
    return loadCertificate(input);
  } catch (e) {
    throw new Failure(`${file}: not a usable certificate: ${(e as Error).message}`);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parse(sub: string, argv: string[], options: NonNullable<Parameters<typeof parseArgs>[0]>['options']): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${oneLine((e as Error).message)} (see "gkh-bus smev ${sub} --help")`);
  }
}

function oneFile(sub: string, positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError(`missing <file> argument (see "gkh-bus smev ${sub} --help")`);
  if (positionals.length > 1) throw new UsageError(`expected one <file>, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0]!;
}

export interface SmevToolsIo {
  stdout: (s: string | Buffer) => void;
  stderr: (s: string) => void;
  provider?: GostProvider;
}

const defaultIo: SmevToolsIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

/** Entry point of `gkh-bus smev …`; returns the exit code. */
export async function smevTools(argv: string[], io: SmevToolsIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub ? io.stdout : io.stderr)(`${SMEV_HELP}\n`);
    return sub ? 0 : 2;
  }
  const provider = io.provider ?? createProvider('js');
  try {
    switch (sub) {
      case 'transform':
        return transformCmd(rest, io, provider);
      case 'verify':
        return verifyCmd(rest, io, provider);
      case 'sign':
        return signCmd(rest, io, provider);
      default:
        throw new UsageError(`unknown subcommand "${sub}" (expected transform, verify or sign; see "gkh-bus smev --help")`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`gkh-bus smev${SUB_HELPS[sub] ? ` ${sub}` : ''}: ${e.message}\n`);
      return 2;
    }
    io.stderr(`gkh-bus smev ${sub}: ${oneLine((e as Error).message)}\n`);
    return 1;
  }
}

// ================================================================================ transform

function transformCmd(argv: string[], io: SmevToolsIo, provider: GostProvider): number {
  const a = parse('transform', argv, { id: { type: 'string' }, digest: { type: 'boolean' } });
  if (a.values.help) {
    io.stdout(`${SMEV_TRANSFORM_HELP}\n`);
    return 0;
  }
  const file = oneFile('transform', a.positionals);
  const { doc } = readXml(file);
  const id = a.values.id as string | undefined;
  let el: Element;
  if (id === undefined) el = doc.documentElement;
  else {
    const found = findElementsById(doc, id);
    if (found.length === 0) {
      const ids: string[] = [];
      walk(doc.documentElement, (e) => {
        const v = e.getAttribute('Id');
        if (v) ids.push(`${v} (<${e.nodeName}>)`);
      });
      throw new Failure(`${file}: no element with Id="${id}"${ids.length ? `; Ids present: ${ids.join(', ')}` : '; no element carries an Id'}`);
    }
    if (found.length > 1) throw new Failure(`${file}: ${found.length} elements carry Id="${id}": ${found.map(elementPath).join(', ')}`);
    el = found[0]!;
  }
  let out: string;
  try {
    out = smevTransform(el);
  } catch (e) {
    throw new Failure(`${file}: ${(e as Error).message}`);
  }
  const bytes = Buffer.from(out, 'utf8');
  if (a.values.digest) io.stdout(`${provider.digest(bytes).toString('base64')}\n`);
  else io.stdout(bytes);
  return 0;
}

// ================================================================================ verify

export interface SignatureReport {
  /** 1-based position of the ds:Signature in document order */
  index: number;
  /** path of the element holding the ds:Signature */
  container: string;
  containerLocalName: string;
  /** path of the ds:Signature itself */
  signature: string;
  referenceUri?: string;
  /** path of the element the Reference points at (when it resolves to exactly one element) */
  target?: string;
  targetLocalName?: string;
  computedDigest?: string;
  statedDigest?: string;
  /** true when computedDigest was computed by the tool for information after an earlier check failed */
  digestInformational?: boolean;
  certificate?: { subject: string; issuer: string; serialNumber: string; notBefore: string; notAfter: string };
  ok: boolean;
  fault?: SignatureFault;
  reason?: string;
}

function dsChildren(el: Element, local: string): Element[] {
  return children(el).filter((c) => c.namespaceURI === DSIG_NS && c.localName === local);
}

function referenceOf(sig: Element): Element | undefined {
  const si = dsChildren(sig, 'SignedInfo')[0];
  return si ? dsChildren(si, 'Reference')[0] : undefined;
}

function embeddedCertificate(sig: Element): GostCertificate | undefined {
  const ki = dsChildren(sig, 'KeyInfo')[0];
  const x = ki ? dsChildren(ki, 'X509Data').flatMap((d) => dsChildren(d, 'X509Certificate'))[0] : undefined;
  if (!x) return undefined;
  try {
    return loadCertificate((x.textContent ?? '').replace(/\s+/g, ''));
  } catch {
    return undefined;
  }
}

function textOf(el: Element | undefined): string | undefined {
  return el ? (el.textContent ?? '').replace(/\s+/g, '') : undefined;
}

/** Structural anti-wrapping check for the known SMEV containers: the signature covers the element its container belongs to. */
function checkPlacement(container: Element, target: Element): string | undefined {
  const rule = EXPECTED_TARGETS[container.localName ?? ''];
  if (!rule) return undefined;
  const name = target.localName ?? target.nodeName;
  if (rule.personal) {
    const parent = target.parentNode as Element | null;
    if (!parent || parent.localName !== 'MessagePrimaryContent' || parent.parentNode !== container.parentNode) {
      return `<${container.nodeName}> must sign the element directly under the sibling MessagePrimaryContent, but the Reference points at ${elementPath(target)}`;
    }
    return undefined;
  }
  if (!rule.names.includes(name)) {
    return `<${container.nodeName}> must sign one of ${rule.names.join(', ')}, but the Reference points at <${target.nodeName}>`;
  }
  if (target.parentNode !== container.parentNode) {
    return `<${container.nodeName}> must sign its sibling <${name}>, but the Reference points at ${elementPath(target)}`;
  }
  return undefined;
}

export function verifyDocument(doc: Document, opts: { provider: GostProvider; trusted?: GostCertificate[]; now?: Date }): SignatureReport[] {
  const sigs: Element[] = [];
  walk(doc.documentElement, (e) => {
    if (e.namespaceURI === DSIG_NS && e.localName === 'Signature') sigs.push(e);
  });
  return sigs.map((sig, i) => {
    const container = (sig.parentNode && sig.parentNode.nodeType === ELEMENT_NODE ? sig.parentNode : sig) as Element;
    const report: SignatureReport = {
      index: i + 1,
      container: elementPath(container),
      containerLocalName: container.localName ?? container.nodeName,
      signature: elementPath(sig),
      ok: false,
    };
    const ref = referenceOf(sig);
    const uri = ref?.getAttribute('URI') ?? undefined;
    let target: Element | undefined;
    if (uri !== undefined && uri.startsWith('#') && uri.length > 1) {
      const found = findElementsById(doc, uri.slice(1));
      if (found.length === 1) target = found[0];
    }
    if (target) {
      report.target = elementPath(target);
      report.targetLocalName = target.localName ?? target.nodeName;
    }
    let r: VerifyResult;
    const placement = target && sig.parentNode !== doc ? checkPlacement(container, target) : undefined;
    if (placement) {
      r = { ok: false, fault: 'IncorrectSignatureTarget', reason: placement, referenceUri: uri };
    } else {
      // verifySignatureElement resolves the Reference itself and fails unless exactly one element carries the Id
      r = verifySignatureElement(sig, { provider: opts.provider, trusted: opts.trusted, now: opts.now });
    }
    report.referenceUri = r.referenceUri ?? uri;
    report.statedDigest = r.statedDigest ?? textOf(ref ? dsChildren(ref, 'DigestValue')[0] : undefined);
    report.computedDigest = r.computedDigest;
    if (report.computedDigest === undefined && target && ref) {
      // informational: what the digest would be (same transform chain as the verifier)
      const algs = (dsChildren(ref, 'Transforms')[0] ? dsChildren(dsChildren(ref, 'Transforms')[0]!, 'Transform') : []).map((t) => t.getAttribute('Algorithm') ?? '');
      try {
        const out = smevTransform(target, {
          commentsSplitText: algs.some((a) => a.endsWith('#WithComments')),
          exclude: algs[0] === ALG.envelopedSignature ? sig : null,
        });
        report.computedDigest = opts.provider.digest(Buffer.from(out, 'utf8')).toString('base64');
        report.digestInformational = true;
      } catch {
        /* transform impossible: leave undefined */
      }
    }
    const cert = r.certificate ?? embeddedCertificate(sig);
    if (cert) {
      report.certificate = {
        subject: cert.subject,
        issuer: cert.issuer,
        serialNumber: cert.serialNumber,
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
      };
    }
    report.ok = r.ok;
    if (!r.ok) {
      report.fault = r.fault;
      report.reason = r.reason;
    }
    return report;
  });
}

function formatReport(r: SignatureReport): string {
  const lines = [`Signature ${r.index}: ${r.ok ? 'OK' : `FAILED ${r.fault}: ${r.reason}`}`];
  lines.push(`  container:   ${r.container}`);
  lines.push(`  reference:   ${r.referenceUri ?? '(none)'} -> ${r.target ?? '(no single element with that Id)'}`);
  lines.push(`  stated:      ${r.statedDigest ?? '(none)'}`);
  const mark = r.computedDigest === undefined ? '' : r.computedDigest === r.statedDigest ? ' (matches)' : ' (DIFFERS)';
  lines.push(`  computed:    ${r.computedDigest ?? '(not computed)'}${mark}${r.digestInformational ? ' [informational]' : ''}`);
  if (r.certificate) {
    lines.push(`  certificate: ${r.certificate.subject}`);
    lines.push(`  issuer:      ${r.certificate.issuer}`);
    lines.push(`  serial:      ${r.certificate.serialNumber}`);
    lines.push(`  valid:       ${r.certificate.notBefore} .. ${r.certificate.notAfter}`);
  } else lines.push('  certificate: (none usable)');
  return lines.join('\n');
}

function verifyCmd(argv: string[], io: SmevToolsIo, provider: GostProvider): number {
  const a = parse('verify', argv, { trust: { type: 'string', multiple: true }, json: { type: 'boolean' }, at: { type: 'string' } });
  if (a.values.help) {
    io.stdout(`${SMEV_VERIFY_HELP}\n`);
    return 0;
  }
  const file = oneFile('verify', a.positionals);
  let now: Date | undefined;
  if (a.values.at !== undefined) {
    now = new Date(a.values.at as string);
    if (Number.isNaN(now.getTime())) throw new UsageError(`--at "${a.values.at}": not an ISO 8601 time`);
  }
  const trustFiles = (a.values.trust as string[] | undefined) ?? [];
  for (const t of trustFiles) readInput(t, 'certificate'); // missing trust files are usage errors
  const trusted = trustFiles.length ? trustFiles.map(readCertificate) : undefined;
  const { doc } = readXml(file);
  const reports = verifyDocument(doc, { provider, trusted, now });
  if (a.values.json) io.stdout(`${JSON.stringify(reports, null, 2)}\n`);
  else if (reports.length === 0) io.stdout(`${file}: no ds:Signature found\n`);
  else {
    const bad = reports.filter((r) => !r.ok).length;
    io.stdout(`${reports.map(formatReport).join('\n\n')}\n\n${file}: ${reports.length} signature(s), ${bad ? `${bad} FAILED` : 'all OK'}\n`);
  }
  if (reports.length === 0) {
    io.stderr(`gkh-bus smev verify: ${file}: no ds:Signature found\n`);
    return 1;
  }
  const failed = reports.filter((r) => !r.ok);
  if (failed.length === 0) return 0;
  const expired = failed.some((r) => r.fault === 'CertificateIsExpired') && a.values.at === undefined;
  io.stderr(
    `gkh-bus smev verify: ${file}: ${failed.length} of ${reports.length} signature(s) failed: ` +
      `${failed.map((r) => `#${r.index} in ${r.containerLocalName}: ${r.fault}`).join('; ')}` +
      `${expired ? ' (use --at <time> to check an old message at its own time)' : ''}\n`,
  );
  return 1;
}

// ================================================================================ sign

function signCmd(argv: string[], io: SmevToolsIo, provider: GostProvider): number {
  const a = parse('sign', argv, {
    key: { type: 'string' }, cert: { type: 'string' }, id: { type: 'string' }, container: { type: 'string' }, out: { type: 'string' },
  });
  if (a.values.help) {
    io.stdout(`${SMEV_SIGN_HELP}\n`);
    return 0;
  }
  const file = oneFile('sign', a.positionals);
  if (!a.values.key) throw new UsageError(`${file}: missing --key <pem> (the signer's PKCS#8 private key)`);
  if (!a.values.cert) throw new UsageError(`${file}: missing --cert <pem|der> (the signer's certificate)`);
  const keyFile = a.values.key as string;
  const certFile = a.values.cert as string;
  const keyBuf = readInput(keyFile, 'private key');
  readInput(certFile, 'certificate');
  const { xml, doc } = readXml(file);

  let key;
  try {
    key = loadPrivateKey(keyBuf);
  } catch (e) {
    throw new Failure(`${keyFile}: not a usable private key: ${(e as Error).message}`);
  }
  const cert = readCertificate(certFile);
  const probe = Buffer.from('gkh-bus smev sign: key/certificate match probe');
  let matches = false;
  try {
    matches = provider.verify(probe, provider.sign(probe, key), cert);
  } catch {
    matches = false;
  }
  if (!matches) throw new Failure(`${keyFile}: the private key does not match the certificate ${certFile} (${cert.subject})`);
  const now = new Date();
  if (now < cert.notBefore || now > cert.notAfter) {
    io.stderr(`gkh-bus smev sign: warning: ${certFile}: certificate is not valid now (${cert.notBefore.toISOString()} .. ${cert.notAfter.toISOString()})\n`);
  }

  // ---- target
  let id = a.values.id as string | undefined;
  if (id === undefined) {
    const candidates: Element[] = [];
    walk(doc.documentElement, (e) => {
      if (CALLER_SIGNED.includes(e.localName ?? '') && e.getAttribute('Id')) candidates.push(e);
    });
    if (candidates.length !== 1) {
      const list = candidates.map((c) => `${c.getAttribute('Id')} (${elementPath(c)})`).join(', ');
      throw new Failure(
        candidates.length === 0
          ? `${file}: no element to sign: none of ${CALLER_SIGNED.join(', ')} carries an Id attribute; give --id`
          : `${file}: several elements could be signed, choose one with --id: ${list}`,
      );
    }
    id = candidates[0]!.getAttribute('Id')!;
  } else {
    const found = findElementsById(doc, id);
    if (found.length === 0) throw new Failure(`${file}: no element with Id="${id}"`);
    if (found.length > 1) throw new Failure(`${file}: ${found.length} elements carry Id="${id}": ${found.map(elementPath).join(', ')}`);
  }

  // ---- container
  const containerName = (a.values.container as string | undefined) ?? 'CallerInformationSystemSignature';
  const containers: Element[] = [];
  walk(doc.documentElement, (e) => {
    if ((e.localName ?? e.nodeName) === containerName) containers.push(e);
  });
  if (containers.length === 0) {
    throw new Failure(`${file}: there is no <${containerName}> element to put the signature into (add an empty one where the schema places it)`);
  }
  if (containers.length > 1) throw new Failure(`${file}: ${containers.length} <${containerName}> elements: ${containers.map(elementPath).join(', ')}`);
  if (children(containers[0]!).length > 0 || /\S/.test(containers[0]!.textContent ?? '')) {
    throw new Failure(`${file}: <${containers[0]!.nodeName}> is not empty (already signed?); remove its content to re-sign`);
  }

  let signed: string;
  try {
    signed = signXml(xml, { targetId: id, containerLocalName: containerName, signer: { key, cert, provider } });
  } catch (e) {
    throw new Failure(`${file}: ${(e as Error).message}`);
  }
  if (a.values.out) {
    try {
      writeFileSync(a.values.out as string, signed);
    } catch (e) {
      throw new Failure(`${a.values.out}: cannot write: ${(e as Error).message}`);
    }
  } else io.stdout(signed);
  return 0;
}
