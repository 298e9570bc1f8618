/**
 * The project's own GOST R 34.10 OID → curve table (smev3.md §7.3). The third-party libraries'
 * tables are NOT used (they wrongly map tc26-256 paramSetA to CryptoPro-A).
 */

export const OID = {
  /** GOST R 34.10-2012 256-bit public key */
  gost2012_256: '1.2.643.7.1.1.1.1',
  /** GOST R 34.10-2012 512-bit public key */
  gost2012_512: '1.2.643.7.1.1.1.2',
  /** GOST R 34.10-2001 public key */
  gost2001: '1.2.643.2.2.19',
  /** GOST R 34.11-2012 256 (digest param set in SPKI) */
  streebog256: '1.2.643.7.1.1.2.2',
  /** signature algorithm GOST R 34.10-2012 with GOST R 34.11-2012 (256) */
  sigGost2012_256: '1.2.643.7.1.1.3.2',
  cryptoProA: '1.2.643.2.2.35.1',
  cryptoProB: '1.2.643.2.2.35.2',
  cryptoProC: '1.2.643.2.2.35.3',
  cryptoProXchA: '1.2.643.2.2.36.0',
  cryptoProXchB: '1.2.643.2.2.36.1',
  tc26_256_A: '1.2.643.7.1.2.1.1.1',
  tc26_256_B: '1.2.643.7.1.2.1.1.2',
  tc26_256_C: '1.2.643.7.1.2.1.1.3',
  tc26_256_D: '1.2.643.7.1.2.1.1.4',
} as const;

export interface CurveParams {
  name: string;
  p: string;
  a: string;
  b: string;
  q: string;
  x: string;
  y: string;
}

const CRYPTOPRO_A: CurveParams = {
  name: 'CryptoPro-A',
  p: '0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97',
  a: '0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94',
  b: '0xA6',
  q: '0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893',
  x: '0x01',
  y: '0x8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14',
};

const CRYPTOPRO_B: CurveParams = {
  name: 'CryptoPro-B',
  p: '0x8000000000000000000000000000000000000000000000000000000000000C99',
  a: '0x8000000000000000000000000000000000000000000000000000000000000C96',
  b: '0x3E1AF419A269A5F866A7D3C25C3DF80AE979259373FF2B182F49D4CE7E1BBC8B',
  q: '0x800000000000000000000000000000015F700CFFF1A624E5E497161BCC8A198F',
  x: '0x01',
  y: '0x3FA8124359F96680B83D1C3EB2C070E5C545C9858D03ECFB744BF8D717717EFC',
};

const CRYPTOPRO_C: CurveParams = {
  name: 'CryptoPro-C',
  p: '0x9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D759B',
  a: '0x9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D7598',
  b: '0x805A',
  q: '0x9B9F605F5A858107AB1EC85E6B41C8AA582CA3511EDDFB74F02F3A6598980BB9',
  x: '0x00',
  y: '0x41ECE55743711A8C3CBF3783CD08C0EE4D4DC440D4641A8F366E550DFDB3BB67',
};

const CURVES: Record<string, CurveParams> = {
  [OID.cryptoProA]: CRYPTOPRO_A,
  [OID.cryptoProXchA]: CRYPTOPRO_A,
  [OID.tc26_256_B]: CRYPTOPRO_A,
  [OID.cryptoProB]: CRYPTOPRO_B,
  [OID.tc26_256_C]: CRYPTOPRO_B,
  [OID.cryptoProC]: CRYPTOPRO_C,
  [OID.cryptoProXchB]: CRYPTOPRO_C,
  [OID.tc26_256_D]: CRYPTOPRO_C,
};

export class UnsupportedParamSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedParamSetError';
  }
}

/** Curve for a GOST R 34.10-2012-256 publicKeyParamSet OID; throws for paramSetA and unknown OIDs. */
export function curveForParamSet(oid: string): CurveParams {
  if (oid === OID.tc26_256_A) {
    throw new UnsupportedParamSetError(
      `GOST param set ${oid} (id-tc26-gost-3410-12-256-paramSetA, twisted Edwards curve) is not supported by the JS provider`,
    );
  }
  const c = CURVES[oid];
  if (!c) throw new UnsupportedParamSetError(`unknown or unsupported GOST R 34.10-2012-256 param set OID ${oid}`);
  return c;
}
