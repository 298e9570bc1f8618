export type { GostCertificate, GostPrivateKey, GostProvider } from './provider.ts';
export { loadCertificate, certificateToPem, isCertificateValidAt, CertificateError } from './cert.ts';
export { loadPrivateKey, privateKeyToPem, generateTestKeyPair, PrivateKeyError, type TestKeyPairOptions } from './keys.ts';
export { JsGostProvider, createJsProvider, streebog256, publicKeyFromScalar, assertSecureRandom } from './js.ts';
export { OID, curveForParamSet, UnsupportedParamSetError, type CurveParams } from './params.ts';

import type { GostCertificate, GostProvider } from './provider.ts';
import { JsGostProvider } from './js.ts';

export type ProviderName = 'js' | 'openssl';

export function createProvider(name: ProviderName = 'js'): GostProvider {
  switch (name) {
    case 'js':
      return new JsGostProvider();
    case 'openssl':
      throw new Error('GOST provider "openssl" (gost-engine via crypto.setEngine) is not built yet; use "js"');
    default:
      throw new Error(`unknown GOST provider ${String(name)}`);
  }
}

/** Verify a certificate's own signature with the public key of `issuer` (itself for self-signed certificates). */
export function verifyCertificateSignature(cert: GostCertificate, issuer: GostCertificate, provider: GostProvider): boolean {
  if (cert.signatureAlgorithmOid !== '1.2.643.7.1.1.3.2') return false;
  return provider.verify(cert.tbs, cert.signatureValue, issuer);
}
