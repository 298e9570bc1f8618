/** Minimal X.509 reader for GOST certificates (PEM or DER). */
import { TAG, children, decodeOid, decodeString, decodeTime, expectTag, pemBlocks, readTlv, type DerNode } from './der.ts';
import type { GostCertificate } from './provider.ts';

const ATTR_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'T',
  '2.5.4.42': 'G',
  '1.2.840.113549.1.9.1': 'E',
  '1.2.840.113549.1.9.2': 'unstructuredName',
  '1.2.643.100.1': 'OGRN',
  '1.2.643.100.3': 'SNILS',
  '1.2.643.100.4': 'INNLE',
  '1.2.643.100.5': 'OGRNIP',
  '1.2.643.3.131.1.1': 'INN',
};

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

interface ParsedName {
  text: string;
  cn?: string;
}

function parseName(node: DerNode): ParsedName {
  expectTag(node, TAG.SEQUENCE, 'Name');
  const parts: string[] = [];
  let cn: string | undefined;
  for (const rdn of children(node)) {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      const oid = decodeOid(expectTag(type, TAG.OID, 'AttributeType').content);
      if (!value) continue;
      const v = decodeString(value);
      const key = ATTR_NAMES[oid] ?? oid;
      if (oid === '2.5.4.3' && cn === undefined) cn = v;
      parts.push(`${key}=${v}`);
    }
  }
  return { text: parts.join(', '), cn };
}

function toDer(input: string | Buffer | Uint8Array): Buffer {
  if (typeof input === 'string') {
    if (input.includes('-----BEGIN')) {
      const block = pemBlocks(input).find((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE');
      if (!block) throw new CertificateError('no CERTIFICATE PEM block found');
      return block.der;
    }
    const b64 = input.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new CertificateError('certificate is neither PEM nor base64 DER');
    return Buffer.from(b64, 'base64');
  }
  const buf = Buffer.from(input);
  // PEM given as bytes?
  if (buf.length > 10 && buf.subarray(0, 10).toString('latin1') === '-----BEGIN') return toDer(buf.toString('latin1'));
  return buf;
}

/** Load an X.509 certificate from PEM text, bare base64, or DER bytes. */
export function loadCertificate(pemOrDer: string | Buffer | Uint8Array): GostCertificate {
  const der = toDer(pemOrDer);
  try {
    const top = readTlv(der, 0);
    expectTag(top, TAG.SEQUENCE, 'Certificate');
    if (top.end !== der.length) throw new CertificateError('trailing data after the certificate');
    const [tbsNode, sigAlgNode, sigNode] = children(top);
    const tbs = expectTag(tbsNode, TAG.SEQUENCE, 'tbsCertificate');
    const sigAlg = children(expectTag(sigAlgNode, TAG.SEQUENCE, 'signatureAlgorithm'));
    const signatureAlgorithmOid = decodeOid(expectTag(sigAlg[0], TAG.OID, 'signatureAlgorithm.algorithm').content);
    const sigBits = expectTag(sigNode, TAG.BIT_STRING, 'signatureValue');
    if (sigBits.content[0] !== 0) throw new CertificateError('signatureValue has unused bits');

    const f = children(tbs);
    let i = 0;
    if (f[i] && f[i]!.tag === 0xa0) i++; // version
    const serialNode = expectTag(f[i++], TAG.INTEGER, 'serialNumber');
    i++; // signature AlgorithmIdentifier
    const issuer = parseName(f[i++]!);
    const validity = children(expectTag(f[i++], TAG.SEQUENCE, 'validity'));
    const subject = parseName(f[i++]!);
    const spki = children(expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo'));
    const alg = children(expectTag(spki[0], TAG.SEQUENCE, 'SPKI algorithm'));
    const spkiAlgorithmOid = decodeOid(expectTag(alg[0], TAG.OID, 'SPKI algorithm OID').content);
    let publicKeyParamSet = '';
    let digestParamSet: string | undefined;
    if (alg[1] && alg[1].tag === TAG.SEQUENCE) {
      const params = children(alg[1]);
      publicKeyParamSet = decodeOid(expectTag(params[0], TAG.OID, 'publicKeyParamSet').content);
      if (params[1] && params[1].tag === TAG.OID) digestParamSet = decodeOid(params[1].content);
    }
    const keyBits = expectTag(spki[1], TAG.BIT_STRING, 'subjectPublicKey');
    if (keyBits.content[0] !== 0) throw new CertificateError('subjectPublicKey has unused bits');
    const keyInner = keyBits.content.subarray(1);
    let publicKey: Buffer;
    try {
      const oct = readTlv(keyInner, 0);
      if (oct.tag !== TAG.OCTET_STRING || oct.end !== keyInner.length) throw new Error('not an OCTET STRING');
      publicKey = Buffer.from(oct.content);
    } catch {
      throw new CertificateError('subjectPublicKey is not an OCTET STRING (GOST SPKI expected)');
    }

    let serial = serialNode.content;
    while (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1);

    const derCopy = Buffer.from(der);
    return {
      der: derCopy,
      base64: derCopy.toString('base64'),
      subject: subject.text,
      subjectCN: subject.cn,
      issuer: issuer.text,
      issuerCN: issuer.cn,
      serialNumber: serial.toString('hex'),
      notBefore: decodeTime(validity[0]!),
      notAfter: decodeTime(validity[1]!),
      spkiAlgorithmOid,
      publicKeyParamSet,
      digestParamSet,
      publicKey,
      signatureAlgorithmOid,
      tbs: Buffer.from(tbs.raw),
      signatureValue: Buffer.from(sigBits.content.subarray(1)),
    };
  } catch (e) {
    if (e instanceof CertificateError) throw e;
    throw new CertificateError(`cannot parse X.509 certificate: ${(e as Error).message}`);
  }
}

/** PEM text of a certificate. */
export function certificateToPem(cert: GostCertificate): string {
  const lines = cert.base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** True if `now` is within [notBefore, notAfter]. */
export function isCertificateValidAt(cert: GostCertificate, now: Date = new Date()): boolean {
  const t = now.getTime();
  return t >= cert.notBefore.getTime() && t <= cert.notAfter.getTime();
}
