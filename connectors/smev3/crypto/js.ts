/**
 * Pure-JavaScript GOST provider on top of node-gost-crypto 1.0.2 (`procreator: 'CP'`).
 *
 * - The curve comes from the project's own param-set table (params.ts), passed to the library as
 *   explicit curve parameters; the library's OID/name table is never consulted.
 * - Randomness: the per-signature nonce k (and generated private keys) come from Node's
 *   `crypto.randomBytes` with rejection sampling and are handed to the library as `ukm`, so the
 *   library's own random source (which can fall back to Math.random) is never used. We also assert
 *   `globalThis.crypto.getRandomValues` before the library is loaded, so even its fallback path
 *   captures WebCrypto.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { GostCertificate, GostPrivateKey, GostProvider } from './provider.ts';
import { OID, curveForParamSet, type CurveParams } from './params.ts';

interface GostSignInstance {
  sign(privateKey: ArrayBuffer, data: ArrayBuffer): ArrayBuffer;
  verify(publicKey: ArrayBuffer, signature: ArrayBuffer, data: ArrayBuffer): boolean;
  generateKey(): { privateKey: ArrayBuffer; publicKey: ArrayBuffer };
}
interface GostDigestInstance {
  digest(data: ArrayBuffer): ArrayBuffer;
}
interface GostEngine {
  getGostDigest(alg: Record<string, unknown>): GostDigestInstance;
  getGostSign(alg: Record<string, unknown>): GostSignInstance;
}

let engine: GostEngine | undefined;

export function assertSecureRandom(): void {
  const c = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto;
  if (!c || typeof c.getRandomValues !== 'function') {
    throw new Error(
      'globalThis.crypto.getRandomValues is not available: refusing to load the GOST library (it would fall back to Math.random). Use Node >= 20.',
    );
  }
}

function getEngine(): GostEngine {
  if (!engine) {
    assertSecureRandom();
    const require = createRequire(import.meta.url);
    const lib = require('node-gost-crypto') as { gostEngine: GostEngine };
    engine = lib.gostEngine;
  }
  return engine;
}

function toArrayBuffer(u: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(u.byteLength);
  new Uint8Array(ab).set(u);
  return ab;
}

function leToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function bigIntToLe(v: bigint, len: number): Buffer {
  const out = Buffer.alloc(len);
  let x = v;
  for (let i = 0; i < len; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** Uniform random integer in [1, q-1] from Node's CSPRNG, returned as 32 bytes little-endian. */
export function randomScalar(curve: CurveParams): Buffer {
  const q = BigInt(curve.q);
  for (;;) {
    const r = randomBytes(32);
    const v = leToBigInt(r);
    if (v > 0n && v < q) return bigIntToLe(v, 32);
  }
}

function signer(curve: CurveParams, ukm?: Buffer): GostSignInstance {
  const alg: Record<string, unknown> = {
    name: 'GOST R 34.10',
    version: 2012,
    length: 256,
    mode: 'SIGN',
    procreator: 'CP',
    curve: { p: curve.p, a: curve.a, b: curve.b, q: curve.q, x: curve.x, y: curve.y },
  };
  if (ukm) alg['ukm'] = toArrayBuffer(ukm);
  return getEngine().getGostSign(alg);
}

let digester: GostDigestInstance | undefined;

export function streebog256(data: Uint8Array): Buffer {
  if (!digester) digester = getEngine().getGostDigest({ name: 'GOST R 34.11', version: 2012, length: 256 });
  return Buffer.from(digester.digest(toArrayBuffer(data)));
}

/** Public key (x ‖ y little-endian, 64 bytes) for a private scalar (32 bytes little-endian). */
export function publicKeyFromScalar(scalar: Uint8Array, paramSet: string): Buffer {
  const curve = curveForParamSet(paramSet);
  const d = leToBigInt(scalar) % BigInt(curve.q);
  if (d === 0n) throw new Error('invalid GOST private key (zero scalar)');
  const kp = signer(curve, bigIntToLe(d, 32)).generateKey();
  return Buffer.from(kp.publicKey);
}

function checkKeyAlgorithm(oid: string, what: string): void {
  if (oid !== OID.gost2012_256) {
    throw new Error(`${what}: algorithm ${oid} is not GOST R 34.10-2012-256 (${OID.gost2012_256}); only 256-bit GOST 2012 keys are supported`);
  }
}

export class JsGostProvider implements GostProvider {
  readonly name = 'js';

  constructor() {
    assertSecureRandom();
  }

  digest(data: Uint8Array): Buffer {
    return streebog256(data);
  }

  sign(data: Uint8Array, key: GostPrivateKey): Buffer {
    checkKeyAlgorithm(key.algorithmOid, 'private key');
    const curve = curveForParamSet(key.paramSet);
    if (key.scalar.length !== 32) throw new Error('GOST 2012-256 private key must be 32 bytes');
    const e = this.digest(data);
    // Fresh nonce k from Node's CSPRNG; the library uses `ukm` as k (k = ukm mod q).
    const k = randomScalar(curve);
    const sig = signer(curve, k).sign(toArrayBuffer(key.scalar), toArrayBuffer(e));
    const out = Buffer.from(sig);
    if (out.length !== 64) throw new Error(`unexpected GOST signature length ${out.length}`);
    return out;
  }

  verify(data: Uint8Array, signature: Uint8Array, cert: GostCertificate): boolean {
    checkKeyAlgorithm(cert.spkiAlgorithmOid, 'certificate public key');
    const curve = curveForParamSet(cert.publicKeyParamSet);
    if (signature.length !== 64 || cert.publicKey.length !== 64) return false;
    const e = this.digest(data);
    try {
      return signer(curve).verify(toArrayBuffer(cert.publicKey), toArrayBuffer(signature), toArrayBuffer(e)) === true;
    } catch {
      return false;
    }
  }
}

export function createJsProvider(): GostProvider {
  return new JsGostProvider();
}
