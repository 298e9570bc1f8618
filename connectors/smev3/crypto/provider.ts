/** Crypto provider abstraction for GOST R 34.10-2012 (256) / GOST R 34.11-2012 (Streebog-256). */

export interface GostCertificate {
  /** DER bytes of the whole certificate */
  der: Buffer;
  /** base64 of `der`, no line breaks (as in ds:X509Certificate) */
  base64: string;
  /** readable subject, e.g. `CN=test, O=Test, C=RU` (attributes in certificate order) */
  subject: string;
  subjectCN?: string;
  issuer: string;
  issuerCN?: string;
  /** serial number, lower-case hex without leading zero padding beyond DER */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo algorithm OID (1.2.643.7.1.1.1.1 = GOST R 34.10-2012-256) */
  spkiAlgorithmOid: string;
  /** publicKeyParamSet OID from the SPKI parameters */
  publicKeyParamSet: string;
  /** digestParamSet OID from the SPKI parameters, if present */
  digestParamSet?: string;
  /** raw public key, x ‖ y each little-endian (64 bytes for 256-bit keys) */
  publicKey: Buffer;
  /** certificate signature algorithm OID */
  signatureAlgorithmOid: string;
  /** DER of tbsCertificate (what the issuer signed) */
  tbs: Buffer;
  /** signatureValue BIT STRING contents (without the unused-bits octet) */
  signatureValue: Buffer;
}

export interface GostPrivateKey {
  /** private scalar, 32 bytes little-endian (OpenSSL gost-engine / CryptoPro convention) */
  scalar: Buffer;
  /** PKCS#8 algorithm OID (1.2.643.7.1.1.1.1) */
  algorithmOid: string;
  /** publicKeyParamSet OID (selects the curve) */
  paramSet: string;
  /** digestParamSet OID if present */
  digestParamSet?: string;
}

export interface GostProvider {
  name: string;
  /** GOST R 34.11-2012 256 (Streebog) of bytes, output bytes as OpenSSL/CryptoPro emit them */
  digest(data: Uint8Array): Buffer;
  /** GOST R 34.10-2012-256 signature of Streebog-256(data): 64 bytes s ‖ r (big-endian each; digest taken little-endian) */
  sign(data: Uint8Array, key: GostPrivateKey): Buffer;
  /** verify a 64-byte s ‖ r signature of `data` with the certificate's public key */
  verify(data: Uint8Array, signature: Uint8Array, cert: GostCertificate): boolean;
}
