export type { GostCertificate, GostPrivateKey, GostProvider } from './provider.ts';
export { loadCertificate, certificateToPem, isCertificateValidAt, CertificateError } from './cert.ts';
export { loadPrivateKey, privateKeyToPem, generateTestKeyPair, PrivateKeyError, type TestKeyPairOptions } from './keys.ts';
export { JsGostProvider, createJsProvider, streebog256, publicKeyFromScalar, assertSecureRandom } from './js.ts';
export { OID, curveForParamSet, UnsupportedParamSetError, type CurveParams } from './params.ts';
export {
  OpenSslGostProvider,
  createOpenSslProvider,
  findGostEngine,
  loadGostEngine,
  defaultEngineDirectories,
  GostEngineError,
  GOST_DIGEST,
  type OpenSslGostProviderOptions,
} from './openssl.ts';

import type { GostCertificate, GostProvider } from './provider.ts';
import { JsGostProvider } from './js.ts';
import { OpenSslGostProvider, type OpenSslGostProviderOptions } from './openssl.ts';

export type ProviderName = 'js' | 'openssl';

/** `opts` applies to the 'openssl' provider only (engine path; default: search the engines-3 directories). */
export function createProvider(name: ProviderName = 'js', opts: OpenSslGostProviderOptions = {}): GostProvider {
  switch (name) {
    case 'js':
      return new JsGostProvider();
    case 'openssl':
      return new OpenSslGostProvider(opts);
    default:
      throw new Error(`unknown GOST provider ${String(name)}`);
  }
}

/** Verify a certificate's own signature with the public key of `issuer` (itself for self-signed certificates). */
export function verifyCertificateSignature(cert: GostCertificate, issuer: GostCertificate, provider: GostProvider): boolean {
  if (cert.signatureAlgorithmOid !== '1.2.643.7.1.1.3.2') return false;
  return provider.verify(cert.tbs, cert.signatureValue, issuer);
}
