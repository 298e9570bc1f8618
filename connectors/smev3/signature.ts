/**
 * XMLDSig in the SMEV 3 profile (smev3.md §7): detached signature over one `#Id` element,
 * Reference transforms [exc-c14n, urn://smev-gov-ru/xmldsig/transform], GOST R 34.10-2012-256 /
 * GOST R 34.11-2012-256, KeyInfo/X509Data/X509Certificate.
 *
 * SignedInfo is built directly (fixed template) and canonicalised with the exclusive C14N below;
 * the signature is spliced into the original string so that what is signed is what is sent.
 */
import {
  SMEV_TRANSFORM_URI,
  SmevTransformError,
  findElementsById,
  parseXmlStrict,
  smevTransform,
} from '../../transformers/smev/transform.ts';
import { loadCertificate } from './crypto/cert.ts';
import type { GostCertificate, GostPrivateKey, GostProvider } from './crypto/provider.ts';

export { findElementsById } from '../../transformers/smev/transform.ts';

export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';

export const ALG = {
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  excC14nWithComments: 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments',
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  c14nWithComments: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments',
  envelopedSignature: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
  smevTransform: SMEV_TRANSFORM_URI,
  gost2012_256Signature: 'urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256',
  gost2012_256Digest: 'urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256',
} as const;

/** c14n variants accepted as the transform right before the SMEV transform (smev3.md §7.1). */
const ACCEPTED_C14N_TRANSFORMS = new Set<string>([ALG.excC14n, ALG.excC14nWithComments, ALG.c14n, ALG.c14nWithComments]);

export interface Signer {
  key: GostPrivateKey;
  cert: GostCertificate;
  provider: GostProvider;
}

export type SignatureFault =
  | 'NoSignatureFound'
  | 'IncorrectSignatureTarget'
  | 'SignatureIsInvalid'
  | 'CertificateIsNotFound'
  | 'CertificateIsExpired';

export interface VerifyResult {
  ok: boolean;
  fault?: SignatureFault;
  reason?: string;
  referenceUri?: string;
  computedDigest?: string;
  statedDigest?: string;
  certificate?: GostCertificate;
  /** the SMEV transform output that was digested */
  signedXml?: string;
}

export class SmevSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmevSignatureError';
  }
}

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;
const PROCESSING_INSTRUCTION_NODE = 7;

// ============================================================================ exclusive C14N

function c14nText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

function c14nAttr(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#x9;')
    .replace(/\n/g, '&#xA;')
    .replace(/\r/g, '&#xD;');
}

function isNsDecl(a: Attr): boolean {
  return a.name === 'xmlns' || a.name.startsWith('xmlns:');
}

/**
 * Exclusive XML Canonicalization 1.0 without comments (no InclusiveNamespaces) of a whole element
 * subtree, as used for SignedInfo.
 */
export function excC14n(el: Element): string {
  const out: string[] = [];
  const render = (e: Element, rendered: Map<string, string>): void => {
    const prefix = e.prefix ?? '';
    const uri = e.namespaceURI ?? '';
    const scope = new Map(rendered);
    const decls: { prefix: string; uri: string }[] = [];
    const need = (p: string, u: string): void => {
      if (p === 'xml') return;
      const cur = scope.has(p) ? scope.get(p)! : p === '' ? '' : undefined;
      if (cur === u) return;
      scope.set(p, u);
      decls.push({ prefix: p, uri: u });
    };
    need(prefix, uri);
    const attrs: { uri: string; local: string; qname: string; value: string }[] = [];
    for (let i = 0; i < e.attributes.length; i++) {
      const a = e.attributes.item(i)!;
      if (isNsDecl(a)) continue;
      const aUri = a.namespaceURI ?? '';
      if (a.prefix) need(a.prefix, aUri);
      attrs.push({ uri: aUri, local: a.localName ?? a.name, qname: a.name, value: a.value });
    }
    decls.sort((x, y) => (x.prefix < y.prefix ? -1 : x.prefix > y.prefix ? 1 : 0));
    attrs.sort((x, y) => (x.uri < y.uri ? -1 : x.uri > y.uri ? 1 : x.local < y.local ? -1 : x.local > y.local ? 1 : 0));
    let tag = `<${e.nodeName}`;
    for (const d of decls) tag += d.prefix === '' ? ` xmlns="${c14nAttr(d.uri)}"` : ` xmlns:${d.prefix}="${c14nAttr(d.uri)}"`;
    for (const a of attrs) tag += ` ${a.qname}="${c14nAttr(a.value)}"`;
    out.push(tag, '>');
    for (let n = e.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === ELEMENT_NODE) render(n as Element, scope);
      else if (n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) out.push(c14nText((n as CharacterData).data));
      else if (n.nodeType === PROCESSING_INSTRUCTION_NODE) {
        const pi = n as ProcessingInstruction;
        out.push(pi.data ? `<?${pi.target} ${pi.data}?>` : `<?${pi.target}?>`);
      }
    }
    out.push(`</${e.nodeName}>`);
  };
  render(el, new Map());
  return out.join('');
}

// ============================================================================ helpers

function escAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

function elementChildren(el: Element): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) out.push(n as Element);
  return out;
}

function findByLocalName(root: Element, local: string): Element[] {
  const out: Element[] = [];
  const walk = (e: Element): void => {
    if ((e.localName ?? e.nodeName) === local) out.push(e);
    for (let n = e.firstChild; n; n = n.nextSibling) if (n.nodeType === ELEMENT_NODE) walk(n as Element);
  };
  walk(root);
  return out;
}

function isAncestorOrSelf(anc: Node, n: Node | null): boolean {
  for (let p: Node | null = n; p; p = p.parentNode) if (p === anc) return true;
  return false;
}

function hasSignificantContent(el: Element): boolean {
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === ELEMENT_NODE) return true;
    if ((n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) && /\S/.test((n as CharacterData).data)) return true;
  }
  return false;
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Text content of an element that must contain only text (no comments, PIs, elements), as compact base64. */
function plainBase64(el: Element, what: string): { ok: true; value: string } | { ok: false; reason: string } {
  let text = '';
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === TEXT_NODE) text += (n as CharacterData).data;
    else return { ok: false, reason: `${what} must contain only base64 text (found ${n.nodeName})` };
  }
  const compact = text.replace(/[ \t\r\n]+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64_RE.test(compact)) {
    return { ok: false, reason: `${what} is not valid base64` };
  }
  return { ok: true, value: compact };
}

function isDs(el: Element, local: string): boolean {
  return el.namespaceURI === DSIG_NS && el.localName === local;
}

// ============================================================================ signing

function signedInfoXml(referenceId: string, digestB64: string): string {
  return (
    '<ds:SignedInfo>' +
    `<ds:CanonicalizationMethod Algorithm="${ALG.excC14n}"/>` +
    `<ds:SignatureMethod Algorithm="${ALG.gost2012_256Signature}"/>` +
    `<ds:Reference URI="#${escAttr(referenceId)}">` +
    '<ds:Transforms>' +
    `<ds:Transform Algorithm="${ALG.excC14n}"/>` +
    `<ds:Transform Algorithm="${ALG.smevTransform}"/>` +
    '</ds:Transforms>' +
    `<ds:DigestMethod Algorithm="${ALG.gost2012_256Digest}"/>` +
    `<ds:DigestValue>${digestB64}</ds:DigestValue>` +
    '</ds:Reference>' +
    '</ds:SignedInfo>'
  );
}

/** Build a complete `ds:Signature` element (string) over the transform output `transformed`. */
export function buildSignature(referenceId: string, transformed: string, signer: Signer): string {
  const digest = signer.provider.digest(Buffer.from(transformed, 'utf8')).toString('base64');
  const si = signedInfoXml(referenceId, digest);
  // Canonicalise exactly as a verifier will: parse the Signature skeleton and run exc-c14n on SignedInfo.
  const skeleton = `<ds:Signature xmlns:ds="${DSIG_NS}">${si}</ds:Signature>`;
  const siEl = elementChildren(parseXmlStrict(skeleton).documentElement)[0]!;
  const canon = excC14n(siEl);
  const sig = signer.provider.sign(Buffer.from(canon, 'utf8'), signer.key).toString('base64');
  return (
    `<ds:Signature xmlns:ds="${DSIG_NS}">` +
    si +
    `<ds:SignatureValue>${sig}</ds:SignatureValue>` +
    `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>${signer.cert.base64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>` +
    '</ds:Signature>'
  );
}

/** Replace comments, CDATA sections and PIs with spaces (same length) so that tag searches ignore them. */
function maskNonMarkup(xml: string): string {
  return xml.replace(/<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>/g, (m) => ' '.repeat(m.length));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** End index (exclusive) of the start tag beginning at `start` (handles quoted attribute values). */
function startTagEnd(xml: string, start: number): number {
  let quote: string | null = null;
  for (let i = start + 1; i < xml.length; i++) {
    const c = xml[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return i + 1;
  }
  throw new SmevSignatureError('unterminated start tag');
}

/**
 * Sign the element with `Id="<targetId>"` and place the `ds:Signature` as the only child of the
 * (empty) element whose local name is `containerLocalName`. The rest of the document is unchanged.
 *
 * `transformed`: the signed element was written in SMEV-canonical form (transformers/smev/canonical.ts), so its
 * text in `xml` is its own transform output; it is hashed as it stands and the document is not parsed. It must
 * occur in `xml` verbatim and carry the Id in its start tag.
 */
export function signXml(xml: string, opts: { targetId: string; containerLocalName: string; signer: Signer; transformed?: string }): string {
  let transformed = opts.transformed;
  if (transformed !== undefined) {
    const tagEnd = transformed.indexOf('>');
    if (!transformed.startsWith('<') || tagEnd < 0 || !transformed.slice(0, tagEnd).includes(` Id="${escAttr(opts.targetId)}"`)) {
      throw new SmevSignatureError(`the prepared element does not carry Id="${opts.targetId}"`);
    }
    if (!xml.includes(transformed)) throw new SmevSignatureError('the prepared element is not part of the document');
  } else {
    const doc = parseXmlStrict(xml);
    const targets = findElementsById(doc, opts.targetId);
    if (targets.length === 0) throw new SmevSignatureError(`no element with Id="${opts.targetId}"`);
    if (targets.length > 1) throw new SmevSignatureError(`several elements carry Id="${opts.targetId}"`);
    const target = targets[0]!;
    const containers = findByLocalName(doc.documentElement, opts.containerLocalName);
    if (containers.length === 0) throw new SmevSignatureError(`no <${opts.containerLocalName}> element to put the signature into`);
    if (containers.length > 1) throw new SmevSignatureError(`several <${opts.containerLocalName}> elements: ambiguous signature container`);
    const container = containers[0]!;
    if (hasSignificantContent(container)) throw new SmevSignatureError(`<${container.nodeName}> is not empty`);
    if (isAncestorOrSelf(target, container)) {
      throw new SmevSignatureError(`<${container.nodeName}> is inside the signed element: SMEV signatures are detached`);
    }
    if (isAncestorOrSelf(container, target)) throw new SmevSignatureError(`the signed element is inside <${container.nodeName}>`);
    transformed = smevTransform(target);
  }
  const signature = buildSignature(opts.targetId, transformed, opts.signer);
  return spliceSignature(xml, opts.containerLocalName, signature);
}

/** Puts `signature` into the one empty element with local name `containerLocalName` (found in the text). */
function spliceSignature(xml: string, containerLocalName: string, signature: string): string {
  const masked = maskNonMarkup(xml);
  const re = new RegExp(`<((?:[A-Za-z_][\\w.-]*:)?${escapeRe(containerLocalName)})(?=[\\s/>])`, 'g');
  const starts: { at: number; qn: string }[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(masked))) starts.push({ at: m.index, qn: m[1]! });
  if (starts.length !== 1) throw new SmevSignatureError(`cannot locate <${containerLocalName}> unambiguously in the document text`);
  const { at: start, qn } = starts[0]!;
  const tagEnd = startTagEnd(masked, start);
  if (masked[tagEnd - 2] === '/') {
    let head = xml.slice(start, tagEnd - 2);
    head = head.replace(/\s+$/, '');
    return `${xml.slice(0, start)}${head}>${signature}</${qn}>${xml.slice(tagEnd)}`;
  }
  const endRe = new RegExp(`</${escapeRe(qn)}\\s*>`, 'g');
  endRe.lastIndex = tagEnd;
  const em = endRe.exec(masked);
  if (!em) throw new SmevSignatureError(`no end tag for <${qn}>`);
  if (/\S/.test(masked.slice(tagEnd, em.index))) throw new SmevSignatureError(`<${qn}> is not empty`);
  return `${xml.slice(0, tagEnd)}${signature}${xml.slice(em.index)}`;
}

// ============================================================================ verification

export interface VerifySignatureOptions {
  /** local name the referenced element must have; it must also be the only element with that local name */
  targetLocalName?: string;
  trusted?: GostCertificate[];
  provider: GostProvider;
  now?: Date;
}

function fail(fault: SignatureFault, reason: string, extra: Partial<VerifyResult> = {}): VerifyResult {
  return { ok: false, fault, reason, ...extra };
}

/** Verify one `ds:Signature` element against its document (profile checks, digest, signature, certificate). */
export function verifySignatureElement(signatureEl: Element, opts: VerifySignatureOptions): VerifyResult {
  const doc = signatureEl.ownerDocument;
  if (!isDs(signatureEl, 'Signature')) return fail('NoSignatureFound', 'element is not ds:Signature');

  // ---- structure
  for (let n = signatureEl.firstChild; n; n = n.nextSibling) {
    if ((n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) && /\S/.test((n as CharacterData).data)) {
      return fail('SignatureIsInvalid', 'unexpected text inside ds:Signature');
    }
  }
  const sigKids = elementChildren(signatureEl);
  const signedInfos = sigKids.filter((e) => isDs(e, 'SignedInfo'));
  const sigValues = sigKids.filter((e) => isDs(e, 'SignatureValue'));
  const keyInfos = sigKids.filter((e) => isDs(e, 'KeyInfo'));
  if (signedInfos.length !== 1) return fail('SignatureIsInvalid', `expected exactly one ds:SignedInfo, found ${signedInfos.length}`);
  if (sigValues.length !== 1) return fail('SignatureIsInvalid', `expected exactly one ds:SignatureValue, found ${sigValues.length}`);
  if (keyInfos.length > 1) return fail('SignatureIsInvalid', 'more than one ds:KeyInfo');
  if (sigKids[0] !== signedInfos[0] || sigKids[1] !== sigValues[0]) {
    return fail('SignatureIsInvalid', 'ds:Signature children out of order');
  }
  for (const k of sigKids) {
    if (!(isDs(k, 'SignedInfo') || isDs(k, 'SignatureValue') || isDs(k, 'KeyInfo'))) {
      return fail('SignatureIsInvalid', `unexpected element ${k.nodeName} in ds:Signature`);
    }
  }
  const signedInfo = signedInfos[0]!;
  const siKids = elementChildren(signedInfo);
  const [c14nMethod, sigMethod, ...refs] = siKids;
  if (!c14nMethod || !isDs(c14nMethod, 'CanonicalizationMethod')) return fail('SignatureIsInvalid', 'ds:CanonicalizationMethod missing');
  if (!sigMethod || !isDs(sigMethod, 'SignatureMethod')) return fail('SignatureIsInvalid', 'ds:SignatureMethod missing');
  if (refs.length !== 1 || !isDs(refs[0]!, 'Reference')) {
    return fail('SignatureIsInvalid', `expected exactly one ds:Reference in SignedInfo, found ${refs.filter((r) => isDs(r, 'Reference')).length}`);
  }
  const reference = refs[0]!;

  // ---- algorithms
  const c14nAlg = c14nMethod.getAttribute('Algorithm');
  if (c14nAlg !== ALG.excC14n) return fail('SignatureIsInvalid', `unsupported SignedInfo canonicalization ${c14nAlg}`);
  if (elementChildren(c14nMethod).length > 0) return fail('SignatureIsInvalid', 'InclusiveNamespaces in CanonicalizationMethod are not supported');
  const sigAlg = sigMethod.getAttribute('Algorithm');
  if (sigAlg !== ALG.gost2012_256Signature) return fail('SignatureIsInvalid', `unsupported signature method ${sigAlg}`);

  const uri = reference.getAttribute('URI') ?? '';
  const refKids = elementChildren(reference);
  const transformsEls = refKids.filter((e) => isDs(e, 'Transforms'));
  const digestMethods = refKids.filter((e) => isDs(e, 'DigestMethod'));
  const digestValues = refKids.filter((e) => isDs(e, 'DigestValue'));
  if (transformsEls.length !== 1 || digestMethods.length !== 1 || digestValues.length !== 1 || refKids.length !== 3) {
    return fail('SignatureIsInvalid', 'ds:Reference must contain exactly Transforms, DigestMethod and DigestValue', { referenceUri: uri });
  }
  const transforms = elementChildren(transformsEls[0]!).map((t) => (isDs(t, 'Transform') ? t.getAttribute('Algorithm') ?? '' : `!${t.nodeName}`));
  let list = transforms;
  const enveloped = list[0] === ALG.envelopedSignature;
  if (enveloped) list = list.slice(1);
  if (list.length !== 2 || !ACCEPTED_C14N_TRANSFORMS.has(list[0]!) || list[1] !== ALG.smevTransform) {
    return fail('SignatureIsInvalid', `transforms not in the SMEV profile: [${transforms.join(', ')}]`, { referenceUri: uri });
  }
  const withComments = list[0]!.endsWith('#WithComments');
  const digestAlg = digestMethods[0]!.getAttribute('Algorithm');
  if (digestAlg !== ALG.gost2012_256Digest) return fail('SignatureIsInvalid', `unsupported digest method ${digestAlg}`, { referenceUri: uri });
  const dv = plainBase64(digestValues[0]!, 'DigestValue');
  if (!dv.ok) return fail('SignatureIsInvalid', dv.reason, { referenceUri: uri });
  const statedDigest = dv.value;
  const sv = plainBase64(sigValues[0]!, 'SignatureValue');
  if (!sv.ok) return fail('SignatureIsInvalid', sv.reason, { referenceUri: uri, statedDigest });
  const sigBytes = Buffer.from(sv.value, 'base64');
  if (sigBytes.length !== 64) return fail('SignatureIsInvalid', `SignatureValue must be 64 bytes, got ${sigBytes.length}`, { referenceUri: uri, statedDigest });

  // ---- target (anti-wrapping)
  if (!uri.startsWith('#') || uri.length < 2) {
    return fail('IncorrectSignatureTarget', `Reference URI "${uri}" is not a same-document #Id reference`, { referenceUri: uri, statedDigest });
  }
  const id = uri.slice(1);
  const targets = findElementsById(doc as Document, id);
  if (targets.length !== 1) {
    return fail('IncorrectSignatureTarget', targets.length === 0 ? `no element with Id="${id}"` : `${targets.length} elements carry Id="${id}"`, {
      referenceUri: uri,
      statedDigest,
    });
  }
  const target = targets[0]!;
  if (opts.targetLocalName !== undefined) {
    const named = findByLocalName((doc as Document).documentElement, opts.targetLocalName);
    if (named.length !== 1 || named[0] !== target) {
      return fail(
        'IncorrectSignatureTarget',
        named.length === 1
          ? `Reference ${uri} points at <${target.nodeName}>, not at <${named[0]!.nodeName}>`
          : `expected exactly one <${opts.targetLocalName}> element, found ${named.length}`,
        { referenceUri: uri, statedDigest },
      );
    }
  }
  if (isAncestorOrSelf(signatureEl, target)) {
    return fail('IncorrectSignatureTarget', 'the Reference points inside the signature', { referenceUri: uri, statedDigest });
  }
  if (!enveloped && isAncestorOrSelf(target, signatureEl)) {
    return fail('SignatureIsInvalid', 'signature is enveloped in the signed element but no enveloped-signature transform is declared', {
      referenceUri: uri,
      statedDigest,
    });
  }

  // ---- certificate
  const base = { referenceUri: uri, statedDigest };
  const certEls = keyInfos[0]
    ? elementChildren(keyInfos[0]).filter((e) => isDs(e, 'X509Data')).flatMap((x) => elementChildren(x).filter((e) => isDs(e, 'X509Certificate')))
    : [];
  if (certEls.length === 0) return fail('CertificateIsNotFound', 'no KeyInfo/X509Data/X509Certificate in the signature', base);
  const cb = plainBase64(certEls[0]!, 'X509Certificate');
  if (!cb.ok) return fail('CertificateIsNotFound', cb.reason, base);
  let certificate: GostCertificate;
  try {
    certificate = loadCertificate(Buffer.from(cb.value, 'base64'));
  } catch (e) {
    return fail('CertificateIsNotFound', `embedded certificate cannot be parsed: ${(e as Error).message}`, base);
  }
  const withCert = { ...base, certificate };
  if (opts.trusted && !opts.trusted.some((t) => t.der.equals(certificate.der))) {
    return fail('CertificateIsNotFound', `certificate "${certificate.subject}" (serial ${certificate.serialNumber}) is not trusted`, withCert);
  }
  const now = opts.now ?? new Date();
  if (now.getTime() < certificate.notBefore.getTime() || now.getTime() > certificate.notAfter.getTime()) {
    return fail(
      'CertificateIsExpired',
      `certificate valid ${certificate.notBefore.toISOString()} .. ${certificate.notAfter.toISOString()}, now ${now.toISOString()}`,
      withCert,
    );
  }

  // ---- digest
  let signedXml: string;
  try {
    signedXml = smevTransform(target, { commentsSplitText: withComments, exclude: enveloped ? signatureEl : null });
  } catch (e) {
    if (e instanceof SmevTransformError) return fail('SignatureIsInvalid', `SMEV transform failed: ${e.message}`, withCert);
    throw e;
  }
  const computedDigest = opts.provider.digest(Buffer.from(signedXml, 'utf8')).toString('base64');
  const withDigest = { ...withCert, computedDigest, signedXml };
  if (computedDigest !== statedDigest) {
    return fail('SignatureIsInvalid', `digest mismatch: computed ${computedDigest}, stated ${statedDigest}`, withDigest);
  }

  // ---- signature value
  const canon = excC14n(signedInfo);
  let good: boolean;
  try {
    good = opts.provider.verify(Buffer.from(canon, 'utf8'), sigBytes, certificate);
  } catch (e) {
    return fail('SignatureIsInvalid', `cannot verify with this certificate: ${(e as Error).message}`, withDigest);
  }
  if (!good) return fail('SignatureIsInvalid', 'SignatureValue does not verify with the embedded certificate', withDigest);
  return { ok: true, ...withDigest };
}

/**
 * Verify the signature held in the element with local name `containerLocalName` over the element
 * with local name `targetLocalName`. `xml` may be given already parsed (parseXmlStrict / parseXml).
 */
export function verifyXml(
  xml: string | Document,
  opts: { containerLocalName: string; targetLocalName: string; trusted?: GostCertificate[]; provider: GostProvider; now?: Date },
): VerifyResult {
  let doc: Document;
  if (typeof xml !== 'string') doc = xml;
  else {
    try {
      doc = parseXmlStrict(xml);
    } catch (e) {
      return fail('SignatureIsInvalid', `document cannot be parsed: ${(e as Error).message}`);
    }
  }
  const containers = findByLocalName(doc.documentElement, opts.containerLocalName);
  if (containers.length === 0) return fail('NoSignatureFound', `no <${opts.containerLocalName}> element`);
  if (containers.length > 1) return fail('IncorrectSignatureTarget', `${containers.length} <${opts.containerLocalName}> elements`);
  const container = containers[0]!;
  const kids = elementChildren(container);
  const sigs = kids.filter((e) => isDs(e, 'Signature'));
  if (sigs.length === 0) return fail('NoSignatureFound', `<${container.nodeName}> holds no ds:Signature`);
  if (sigs.length > 1) return fail('SignatureIsInvalid', `<${container.nodeName}> holds ${sigs.length} ds:Signature elements`);
  if (kids.length !== 1) return fail('SignatureIsInvalid', `<${container.nodeName}> holds elements other than ds:Signature`);
  return verifySignatureElement(sigs[0]!, {
    targetLocalName: opts.targetLocalName,
    trusted: opts.trusted,
    provider: opts.provider,
    now: opts.now,
  });
}
