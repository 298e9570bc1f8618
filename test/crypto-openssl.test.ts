/**
 * The OpenSSL gost-engine provider (connectors/smev3/crypto/openssl.ts). Needs the Debian package
 * libengine-gost-openssl (installed by .ci/run) and the `openssl` command line; nothing is skipped.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  createProvider,
  generateTestKeyPair,
  loadCertificate,
  loadPrivateKey,
  certificateToPem,
  verifyCertificateSignature,
  OpenSslGostProvider,
  GostEngineError,
  OID,
  UnsupportedParamSetError,
  type GostCertificate,
  type GostPrivateKey,
} from '../connectors/smev3/crypto/index.ts';
import { DSIG_NS, excC14n, signXml, verifyXml, type Signer } from '../connectors/smev3/signature.ts';
import { parseXmlStrict } from '../transformers/smev/transform.ts';

const ROOT = resolve(import.meta.dirname, '..');
const fx = (name: string): string => readFileSync(new URL(`./fixtures/smev/${name}`, import.meta.url), 'utf8');
const ofx = (name: string): string => readFileSync(new URL(`./fixtures/openssl/${name}`, import.meta.url), 'utf8');

const ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/gost.so';
const js = createProvider('js');
const ossl = createProvider('openssl');

const D_NOW = new Date('2026-04-16T06:01:35Z');
const D_SV = 'V7Cc5W00wMVnUfVnycA3OjQSqDgkkrBxNbQjBGiDXTA2IFmc52B0p7fH2F/odn65fYrL/wcQ8NwEs2IwhAZpDQ==';
const G_NOW = new Date('2027-01-01T00:00:00Z');

const ENVELOPE = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body>
 <ns2:SendRequestRequest xmlns="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/basic/1.2"
                         xmlns:ns2="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.2">
  <ns2:SenderProvidedRequestData Id="SIGNED_BY_CONSUMER">
   <ns2:MessageID>1a77671a-bcc2-11e8-bb3a-6149e818f8fe</ns2:MessageID>
   <MessagePrimaryContent>
    <q:ExportRequest xmlns:q="urn://example/gis/1.0" version="1"><q:Payer>Иванов &amp; К° &gt; "ООО"</q:Payer><q:Sum>100.00</q:Sum></q:ExportRequest>
   </MessagePrimaryContent>
   <ns2:TestMessage/>
  </ns2:SenderProvidedRequestData>
  <ns2:CallerInformationSystemSignature/>
 </ns2:SendRequestRequest>
</soap:Body></soap:Envelope>`;
const SIGN_OPTS = { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature' };
const CALLER = { containerLocalName: 'CallerInformationSystemSignature', targetLocalName: 'SenderProvidedRequestData' };

function keyPair(paramSet?: 'A' | 'XA'): { key: GostPrivateKey; cert: GostCertificate } {
  const p = generateTestKeyPair({ commonName: `openssl test ${paramSet ?? 'A'}`, paramSet });
  return { key: loadPrivateKey(p.keyPem), cert: loadCertificate(p.certPem) };
}

/** The canonical SignedInfo octets and the SignatureValue bytes of the only ds:Signature in `xml`. */
function signedInfoAndValue(xml: string): { signedInfo: Buffer; signatureValue: Buffer; certB64: string } {
  const doc = parseXmlStrict(xml);
  const si = doc.getElementsByTagNameNS(DSIG_NS, 'SignedInfo').item(0)!;
  const sv = doc.getElementsByTagNameNS(DSIG_NS, 'SignatureValue').item(0)!;
  const cert = doc.getElementsByTagNameNS(DSIG_NS, 'X509Certificate').item(0)!;
  return {
    signedInfo: Buffer.from(excC14n(si as unknown as Element), 'utf8'),
    signatureValue: Buffer.from(sv.textContent!.replace(/\s+/g, ''), 'base64'),
    certB64: cert.textContent!.replace(/\s+/g, ''),
  };
}

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'gkh-openssl-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function opensslCli(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

/** `openssl dgst -verify` of a raw signature file over `data` with the public key the CLI extracts from the certificate. */
function cliVerify(dir: string, certPem: string, data: Buffer, signature: Buffer): { ok: boolean; out: string } {
  writeFileSync(join(dir, 'cert.pem'), certPem);
  const pub = execFileSync('openssl', ['x509', '-engine', 'gost', '-in', join(dir, 'cert.pem'), '-pubkey', '-noout'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  writeFileSync(join(dir, 'pubkey.pem'), pub);
  writeFileSync(join(dir, 'data'), data);
  writeFileSync(join(dir, 'sig'), signature);
  const r = opensslCli(['dgst', '-engine', 'gost', '-md_gost12_256', '-verify', join(dir, 'pubkey.pem'), '-signature', join(dir, 'sig'), join(dir, 'data')]);
  return { ok: r.ok && /Verified OK/.test(r.out), out: r.out };
}

// ------------------------------------------------------------------ engine, factory

test('createProvider("openssl") loads gost-engine from the engines-3 directory', (t) => {
  t.is(ossl.name, 'openssl');
  t.true(ossl instanceof OpenSslGostProvider);
  t.is((ossl as OpenSslGostProvider).enginePath, ENGINE);
  // explicit path, same engine: fine (loaded once per process)
  t.is(new OpenSslGostProvider({ enginePath: ENGINE }).name, 'openssl');
});

// ------------------------------------------------------------------ Streebog

test('Streebog-256 of "" and of vector material equals the js provider', (t) => {
  const empty = ossl.digest(new Uint8Array(0)).toString('hex');
  t.is(empty, '3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb');
  t.is(empty, js.digest(new Uint8Array(0)).toString('hex'));
  t.is(ossl.digest(Buffer.from(fx('B.expected.xml'), 'utf8')).toString('base64'), 'RrR9ig8k4ZisKhsMpmYIY7Iqb8yKv+l1MjFg1kJ9eV0=');
  t.is(ossl.digest(Buffer.from(fx('D.expected.xml'), 'utf8')).toString('base64'), 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=');
  t.is(ossl.digest(Buffer.from(fx('G.expected.xml'), 'utf8')).toString('base64'), 'E+9dJqNnHEz4XcJXDqNS5plVFyQ+M3mv2gA4M1qxuw8=');
  for (const name of ['A1.expected.xml', 'C.expected.xml', 'D.signedinfo-c14n.xml', 'F05.expected.xml']) {
    const b = Buffer.from(fx(name), 'utf8');
    t.deepEqual(ossl.digest(b), js.digest(b), name);
  }
  // block boundaries (64-byte blocks) and a longer random message
  for (const n of [1, 31, 32, 63, 64, 65, 127, 128, 129, 1000, 70_000]) {
    const b = randomBytes(n);
    t.deepEqual(ossl.digest(b), js.digest(b), `length ${n}`);
  }
});

test('hashing with the engine does not leave an error on OpenSSL\'s queue (Node createHash quirk)', (t) => {
  // Without the drain in digest(), the next createPrivateKey of ANY key type fails with
  // "digital envelope routines::unsupported".
  const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' });
  ossl.digest(Buffer.from('x'));
  t.notThrows(() => createPrivateKey(ed));
  ossl.digest(Buffer.from('y'));
  const { key, cert } = keyPair();
  const data = Buffer.from('after a digest');
  t.true(ossl.verify(data, ossl.sign(data, key), cert));
});

// ------------------------------------------------------------------ vector D (real SMEV signature)

test('vector D: the real SMEV signature verifies with the openssl provider (raw and via verifyXml)', (t) => {
  const cert = loadCertificate(fx('D.cert.b64'));
  const si = Buffer.from(fx('D.signedinfo-c14n.xml'), 'utf8');
  const sv = Buffer.from(D_SV, 'base64');
  t.true(ossl.verify(si, sv, cert));
  t.false(ossl.verify(Buffer.from(fx('D.signedinfo-c14n.xml').replace('BakE0', 'BakE1'), 'utf8'), sv, cert));
  t.false(ossl.verify(si, Buffer.concat([sv.subarray(32), sv.subarray(0, 32)]), cert), 'r ‖ s order must not verify');
  t.false(ossl.verify(si, sv.subarray(0, 63), cert));

  const r = verifyXml(fx('D.envelope.xml'), { containerLocalName: 'SMEVSignature', targetLocalName: 'Response', provider: ossl, now: D_NOW });
  t.true(r.ok, r.reason);
  t.is(r.referenceUri, '#SIGNED_BY_SMEV');
  t.is(r.computedDigest, 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=');
  t.true(verifyXml(fx('D.envelope.xml'), { containerLocalName: 'SMEVSignature', targetLocalName: 'Response', provider: ossl, now: D_NOW, trusted: [cert] }).ok);
});

test('vector G: verifies with the openssl provider; the OpenSSL-generated key signs', (t) => {
  const r = verifyXml(fx('G.envelope.xml'), { ...CALLER, provider: ossl, now: G_NOW });
  t.true(r.ok, r.reason);
  const cert = loadCertificate(fx('G.cert.pem'));
  t.true(verifyCertificateSignature(cert, cert, ossl));
  const key = loadPrivateKey(fx('G.key.pem'));
  const data = Buffer.from('проверка');
  const sig = ossl.sign(data, key);
  t.is(sig.length, 64);
  t.true(js.verify(data, sig, cert));
  t.true(ossl.verify(data, sig, cert));
});

// ------------------------------------------------------------------ cross-provider

for (const ps of ['A', 'XA'] as const) {
  test(`js-signed document verifies with openssl and vice versa (CryptoPro-${ps})`, (t) => {
    const { key, cert } = keyPair(ps);
    const byJs = signXml(ENVELOPE, { ...SIGN_OPTS, signer: { key, cert, provider: js } });
    const r1 = verifyXml(byJs, { ...CALLER, provider: ossl, trusted: [cert] });
    t.true(r1.ok, r1.reason);
    const byOssl = signXml(ENVELOPE, { ...SIGN_OPTS, signer: { key, cert, provider: ossl } });
    const r2 = verifyXml(byOssl, { ...CALLER, provider: js, trusted: [cert] });
    t.true(r2.ok, r2.reason);
    t.true(verifyXml(byOssl, { ...CALLER, provider: ossl }).ok);
    // both providers put the same digest into SignedInfo; the signatures differ (random k)
    t.is(r1.computedDigest, r2.computedDigest);
    // tampering is caught by the openssl provider
    const tampered = byJs.replace('100.00', '100.01');
    const r3 = verifyXml(tampered, { ...CALLER, provider: ossl });
    t.is(r3.fault, 'SignatureIsInvalid');
    const forged = tampered.replace(r3.statedDigest!, r3.computedDigest!);
    const r4 = verifyXml(forged, { ...CALLER, provider: ossl });
    t.is(r4.fault, 'SignatureIsInvalid');
    t.regex(r4.reason!, /SignatureValue/);
  });
}

test('a test certificate self-signed by the openssl provider verifies with the js provider', (t) => {
  const p = generateTestKeyPair({ commonName: 'self-signed by openssl', provider: ossl });
  const cert = loadCertificate(p.certPem);
  t.true(verifyCertificateSignature(cert, cert, js));
  t.true(verifyCertificateSignature(cert, cert, ossl));
});

test('OpenSSL-generated tc26 paramSetB key (fixture): both providers agree', (t) => {
  const key = loadPrivateKey(ofx('tcb.key.pem'));
  const cert = loadCertificate(ofx('tcb.cert.pem'));
  t.is(key.paramSet, OID.tc26_256_B);
  t.true(verifyCertificateSignature(cert, cert, ossl)); // made by `openssl req -x509`
  t.true(verifyCertificateSignature(cert, cert, js));
  const signer: Signer = { key, cert, provider: ossl };
  const s = signXml(ENVELOPE, { ...SIGN_OPTS, signer });
  t.true(verifyXml(s, { ...CALLER, provider: js }).ok);
  const s2 = signXml(ENVELOPE, { ...SIGN_OPTS, signer: { ...signer, provider: js } });
  t.true(verifyXml(s2, { ...CALLER, provider: ossl }).ok);
});

// ------------------------------------------------------------------ independent verifier: the OpenSSL command line

test('a gkh-bus signature (signXml, js provider) verifies with `openssl dgst -verify`', (t) => {
  const { key, cert } = keyPair();
  const signed = signXml(ENVELOPE, { ...SIGN_OPTS, signer: { key, cert, provider: js } });
  const { signedInfo, signatureValue, certB64 } = signedInfoAndValue(signed);
  t.is(certB64, cert.base64);
  t.is(signatureValue.length, 64);
  withTmp((dir) => {
    // The CLI's signature file is the same raw 64 bytes s ‖ r as SignatureValue: no reordering.
    const ok = cliVerify(dir, certificateToPem(cert), signedInfo, signatureValue);
    t.true(ok.ok, ok.out);
    // r ‖ s (halves swapped) or fully reversed bytes do not verify: the orders really differ
    t.false(cliVerify(dir, certificateToPem(cert), signedInfo, Buffer.concat([signatureValue.subarray(32), signatureValue.subarray(0, 32)])).ok);
    t.false(cliVerify(dir, certificateToPem(cert), signedInfo, Buffer.from(signatureValue).reverse()).ok);
    // one changed octet of SignedInfo → failure
    const bad = Buffer.from(signedInfo);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 1;
    t.false(cliVerify(dir, certificateToPem(cert), bad, signatureValue).ok);
  });
});

test('vector D verifies with `openssl dgst -verify`; a CLI signature verifies with both providers', (t) => {
  withTmp((dir) => {
    const dCert = loadCertificate(fx('D.cert.b64'));
    const si = Buffer.from(fx('D.signedinfo-c14n.xml'), 'utf8');
    const r = cliVerify(dir, certificateToPem(dCert), si, Buffer.from(D_SV, 'base64'));
    t.true(r.ok, r.out);

    // the other direction: `openssl dgst -sign` output is s ‖ r as well
    const gCert = loadCertificate(fx('G.cert.pem'));
    writeFileSync(join(dir, 'g.key.pem'), fx('G.key.pem'));
    writeFileSync(join(dir, 'si'), si);
    const s = opensslCli(['dgst', '-engine', 'gost', '-md_gost12_256', '-sign', join(dir, 'g.key.pem'), '-out', join(dir, 'cli.sig'), join(dir, 'si')]);
    t.true(s.ok, s.out);
    const cliSig = readFileSync(join(dir, 'cli.sig'));
    t.is(cliSig.length, 64);
    t.true(js.verify(si, cliSig, gCert));
    t.true(ossl.verify(si, cliSig, gCert));
  });
});

// ------------------------------------------------------------------ refusals and errors

test('tc26 paramSetA (OpenSSL-generated key and certificate) is refused clearly', (t) => {
  const key = loadPrivateKey(ofx('tca.key.pem'));
  const cert = loadCertificate(ofx('tca.cert.pem'));
  t.is(key.paramSet, OID.tc26_256_A);
  t.is(cert.publicKeyParamSet, OID.tc26_256_A);
  const e1 = t.throws(() => ossl.sign(Buffer.from('x'), key), { instanceOf: UnsupportedParamSetError, message: /paramSetA/ });
  t.regex(e1!.message, /openssl provider/);
  t.throws(() => ossl.verify(cert.tbs, cert.signatureValue, cert), { instanceOf: UnsupportedParamSetError, message: /paramSetA/ });
  // same behaviour as the js provider
  t.throws(() => js.sign(Buffer.from('x'), key), { instanceOf: UnsupportedParamSetError, message: /paramSetA/ });
  // a spread copy of a supported key with paramSetA is refused too
  const { key: k2 } = keyPair();
  t.throws(() => ossl.sign(Buffer.from('x'), { ...k2, paramSet: OID.tc26_256_A }), { message: /paramSetA/ });
  // unknown param sets / foreign algorithms as in the js provider
  t.throws(() => ossl.sign(Buffer.from('x'), { ...k2, paramSet: '1.2.3.4' }), { instanceOf: UnsupportedParamSetError });
  t.throws(() => ossl.sign(Buffer.from('x'), { ...k2, algorithmOid: OID.gost2012_512 }), { message: /only 256-bit/ });
});

test('a bad engine path gives a clear error', (t) => {
  const e = t.throws(() => createProvider('openssl', { enginePath: '/nonexistent/engines-3/gost.so' }), { instanceOf: GostEngineError });
  t.regex(e!.message, /not found at \/nonexistent\/engines-3\/gost\.so/);
  t.regex(e!.message, /install the Debian package libengine-gost-openssl, or set smev\.provider: js/);
  t.throws(() => new OpenSslGostProvider({ enginePath: 'engines-3/gost.so' }), { instanceOf: GostEngineError, message: /must be absolute/ });
  // another existing file while gost.so is loaded: the engine is process-wide
  t.throws(() => new OpenSslGostProvider({ enginePath: join(ROOT, 'test/fixtures/openssl/tca.cert.pem') }), { instanceOf: GostEngineError, message: /already loaded/ });
});

test('a file that is not an engine gives a clear error (fresh process)', (t) => {
  const script = `
    import { OpenSslGostProvider } from ${JSON.stringify(join(ROOT, 'connectors/smev3/crypto/openssl.ts'))};
    try { new OpenSslGostProvider({ enginePath: ${JSON.stringify(join(ROOT, 'test/fixtures/openssl/tca.cert.pem'))} }); console.log('LOADED'); }
    catch (e) { console.log(e.name + ': ' + e.message); }`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^GostEngineError: cannot load the OpenSSL GOST engine .*tca\.cert\.pem/);
  t.regex(r.stdout, /install the Debian package libengine-gost-openssl, or set smev\.provider: js/);
});
