/** GOST R 34.10-2012-256 private keys (unencrypted PKCS#8) and self-signed test certificates. */
import { createHash, randomBytes } from 'node:crypto';
import { TAG, children, decodeOid, der, expectTag, pemBlocks, readTlv, toPem } from './der.ts';
import type { GostPrivateKey, GostProvider } from './provider.ts';
import { OID, curveForParamSet } from './params.ts';
import { JsGostProvider, publicKeyFromScalar, randomScalar } from './js.ts';

export class PrivateKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivateKeyError';
  }
}

function beToLe32(be: Buffer): Buffer {
  let b = be;
  while (b.length > 32 && b[0] === 0) b = b.subarray(1);
  if (b.length > 32) throw new PrivateKeyError('private key INTEGER is longer than 32 bytes');
  const padded = Buffer.concat([Buffer.alloc(32 - b.length), b]);
  return Buffer.from(padded).reverse();
}

/** Decode the PKCS#8 `privateKey` OCTET STRING contents (OpenSSL gost-engine layouts). */
function decodeScalar(content: Buffer): Buffer {
  // Variant 1: nested OCTET STRING(32), little-endian. Variant 2: INTEGER (big-endian).
  if (content.length >= 2 && (content[0] === TAG.OCTET_STRING || content[0] === TAG.INTEGER)) {
    try {
      const inner = readTlv(content, 0);
      if (inner.end === content.length) {
        if (inner.tag === TAG.OCTET_STRING && inner.content.length === 32) return Buffer.from(inner.content);
        if (inner.tag === TAG.INTEGER) return beToLe32(inner.content);
      }
    } catch {
      /* fall through to the raw form */
    }
  }
  // Variant 3: the raw 32-byte little-endian scalar directly in the privateKey OCTET STRING.
  if (content.length === 32) return Buffer.from(content);
  throw new PrivateKeyError(`unsupported GOST private key encoding (${content.length} bytes)`);
}

/** Load an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) GOST R 34.10-2012-256 key. */
export function loadPrivateKey(pem: string | Buffer): GostPrivateKey {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const blocks = pemBlocks(text);
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY') && !blocks.some((b) => b.label === 'PRIVATE KEY')) {
    throw new PrivateKeyError('encrypted PKCS#8 keys are not supported: export the key unencrypted (openssl pkcs8 -nocrypt)');
  }
  const block = blocks.find((b) => b.label === 'PRIVATE KEY');
  if (!block) throw new PrivateKeyError('no "PRIVATE KEY" PEM block found');
  try {
    const top = expectTag(readTlv(block.der, 0), TAG.SEQUENCE, 'PrivateKeyInfo');
    const [version, algId, pk] = children(top);
    expectTag(version, TAG.INTEGER, 'version');
    const alg = children(expectTag(algId, TAG.SEQUENCE, 'privateKeyAlgorithm'));
    const algorithmOid = decodeOid(expectTag(alg[0], TAG.OID, 'algorithm').content);
    if (algorithmOid !== OID.gost2012_256) {
      throw new PrivateKeyError(`private key algorithm ${algorithmOid} is not GOST R 34.10-2012-256 (${OID.gost2012_256})`);
    }
    const params = children(expectTag(alg[1], TAG.SEQUENCE, 'GOST key parameters'));
    const paramSet = decodeOid(expectTag(params[0], TAG.OID, 'publicKeyParamSet').content);
    const digestParamSet = params[1] && params[1].tag === TAG.OID ? decodeOid(params[1].content) : undefined;
    const scalar = decodeScalar(expectTag(pk, TAG.OCTET_STRING, 'privateKey').content);
    return { scalar, algorithmOid, paramSet, digestParamSet };
  } catch (e) {
    if (e instanceof PrivateKeyError) throw e;
    throw new PrivateKeyError(`cannot parse PKCS#8 private key: ${(e as Error).message}`);
  }
}

/** PKCS#8 PEM in the OpenSSL gost-engine layout (OCTET STRING(32) little-endian scalar). */
export function privateKeyToPem(key: GostPrivateKey): string {
  const params = der.seq(der.oid(key.paramSet), ...(key.digestParamSet ? [der.oid(key.digestParamSet)] : []));
  const info = der.seq(der.small(0), der.seq(der.oid(key.algorithmOid), params), der.octets(key.scalar));
  return toPem('PRIVATE KEY', info);
}

export interface TestKeyPairOptions {
  commonName: string;
  org?: string;
  /** validity in days (default 365) */
  days?: number;
  /** start of validity (default: now minus 1 minute) */
  notBefore?: Date;
  /** 'A' = id-GostR3410-2001-CryptoPro-A-ParamSet (default), 'XA' = CryptoPro-XchA */
  paramSet?: 'A' | 'XA';
  /** provider used to self-sign (default: the pure-JS provider) */
  provider?: GostProvider;
}

function name(commonName: string, org?: string): Buffer {
  const rdn = (oid: string, value: Buffer): Buffer => der.set(der.seq(der.oid(oid), value));
  return der.seq(
    rdn('2.5.4.3', der.utf8(commonName)),
    ...(org ? [rdn('2.5.4.10', der.utf8(org))] : []),
    rdn('2.5.4.6', der.printable('RU')),
  );
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return der.seq(der.oid(oid), ...(critical ? [der.bool(true)] : []), der.octets(value));
}

/**
 * Fresh GOST R 34.10-2012-256 key (CryptoPro-A or XchA param set) and a self-signed X.509 v3
 * certificate signed with it (signature algorithm 1.2.643.7.1.1.3.2, SPKI per RFC 4491 / RFC 7091).
 */
export function generateTestKeyPair(opts: TestKeyPairOptions): { keyPem: string; certPem: string } {
  const paramSet = opts.paramSet === 'XA' ? OID.cryptoProXchA : OID.cryptoProA;
  const curve = curveForParamSet(paramSet);
  const scalar = randomScalar(curve);
  const key: GostPrivateKey = { scalar, algorithmOid: OID.gost2012_256, paramSet, digestParamSet: OID.streebog256 };
  const publicKey = publicKeyFromScalar(scalar, paramSet);
  const provider = opts.provider ?? new JsGostProvider();

  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const days = opts.days ?? 365;
  const notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  if (serial[0] === 0) serial[0] = 0x01;

  const spki = der.seq(
    der.seq(der.oid(OID.gost2012_256), der.seq(der.oid(paramSet), der.oid(OID.streebog256))),
    der.bits(der.octets(publicKey)),
  );
  const ski = createHash('sha1').update(der.octets(publicKey)).digest();
  const dn = name(opts.commonName, opts.org);
  const extensions = der.ctx(
    3,
    der.seq(
      extension('2.5.29.19', true, der.seq(der.bool(true))), // basicConstraints CA:TRUE
      extension('2.5.29.15', true, der.bits(Buffer.from([0xc4]), 2)), // keyUsage digitalSignature, nonRepudiation, keyCertSign
      extension('2.5.29.14', false, der.octets(ski)), // subjectKeyIdentifier
      extension('2.5.29.35', false, der.seq(Buffer.concat([Buffer.from([0x80, ski.length]), ski]))), // authorityKeyIdentifier
    ),
  );
  const sigAlg = der.seq(der.oid(OID.sigGost2012_256));
  const tbs = der.seq(
    der.ctx(0, der.small(2)),
    der.uint(serial),
    sigAlg,
    dn,
    der.seq(der.time(notBefore), der.time(notAfter)),
    dn,
    spki,
    extensions,
  );
  const signature = provider.sign(tbs, key);
  const cert = der.seq(tbs, sigAlg, der.bits(signature));
  return { keyPem: privateKeyToPem(key), certPem: toPem('CERTIFICATE', cert) };
}
