import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  createProvider,
  generateTestKeyPair,
  loadCertificate,
  loadPrivateKey,
  verifyCertificateSignature,
  OID,
  UnsupportedParamSetError,
  type GostCertificate,
} from '../connectors/smev3/crypto/index.ts';
import { der, toPem } from '../connectors/smev3/crypto/der.ts';
import { excC14n, signXml, verifyXml, findElementsById, type Signer } from '../connectors/smev3/signature.ts';
import { parseXmlStrict } from '../transformers/smev/transform.ts';

const fx = (name: string): string => readFileSync(new URL(`./fixtures/smev/${name}`, import.meta.url), 'utf8');
const provider = createProvider('js');

const D_NOW = new Date('2026-04-16T06:01:35Z');
const G_NOW = new Date('2027-01-01T00:00:00Z');

test('Streebog-256("") sanity value', (t) => {
  t.is(provider.digest(new Uint8Array(0)).toString('hex'), '3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb');
});

test('vector B: streebog256 of the transform output', (t) => {
  t.is(provider.digest(Buffer.from(fx('B.expected.xml'), 'utf8')).toString('base64'), 'RrR9ig8k4ZisKhsMpmYIY7Iqb8yKv+l1MjFg1kJ9eV0=');
});

test('createProvider refuses an unknown provider name', (t) => {
  t.throws(() => createProvider('bogus' as 'js'), { message: /unknown GOST provider bogus/ });
});

// ------------------------------------------------------------------ vector D (real SMEV)

test('vector D: certificate fields', (t) => {
  const cert = loadCertificate(fx('D.cert.b64'));
  t.is(cert.subjectCN, 'АО "РТ Лабс"');
  t.is(cert.issuerCN, 'Тестовый УЦ РТК');
  t.is(cert.publicKeyParamSet, '1.2.643.2.2.36.0');
  t.is(cert.spkiAlgorithmOid, '1.2.643.7.1.1.1.1');
  t.is(cert.digestParamSet, '1.2.643.7.1.1.2.2');
  t.is(cert.signatureAlgorithmOid, '1.2.643.7.1.1.3.2');
  t.is(cert.notBefore.toISOString(), '2025-07-07T10:37:43.000Z');
  t.is(cert.notAfter.toISOString(), '2026-07-07T10:47:43.000Z');
  t.is(cert.serialNumber, '02c6e6b10013b35ab94fe37d679c2fdc02');
  // raw key = last 64 bytes of the SPKI given in the vectors
  const spki = Buffer.from(fx('D.spki.pem').replace(/-----[^-]+-----|\s/g, ''), 'base64');
  t.deepEqual(cert.publicKey, spki.subarray(spki.length - 64));
  t.is(cert.base64, fx('D.cert.b64').trim());
});

test('vector D: digest and SignatureValue verify with the js provider', (t) => {
  const cert = loadCertificate(fx('D.cert.b64'));
  t.is(provider.digest(Buffer.from(fx('D.expected.xml'), 'utf8')).toString('base64'), 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=');
  const sv = Buffer.from('V7Cc5W00wMVnUfVnycA3OjQSqDgkkrBxNbQjBGiDXTA2IFmc52B0p7fH2F/odn65fYrL/wcQ8NwEs2IwhAZpDQ==', 'base64');
  t.true(provider.verify(Buffer.from(fx('D.signedinfo-c14n.xml'), 'utf8'), sv, cert));
  const tampered = Buffer.from(fx('D.signedinfo-c14n.xml').replace('BakE0', 'BakE1'), 'utf8');
  t.false(provider.verify(tampered, sv, cert));
});

test('vector D: exc-c14n of the compact SignedInfo reproduces the signed octets', (t) => {
  const doc = parseXmlStrict(fx('D.envelope.xml'));
  const si = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'SignedInfo').item(0)!;
  t.is(excC14n(si as unknown as Element), fx('D.signedinfo-c14n.xml'));
});

test('vector D: full envelope verifies end to end', (t) => {
  const r = verifyXml(fx('D.envelope.xml'), { containerLocalName: 'SMEVSignature', targetLocalName: 'Response', provider, now: D_NOW });
  t.true(r.ok, r.reason);
  t.is(r.referenceUri, '#SIGNED_BY_SMEV');
  t.is(r.computedDigest, 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=');
  t.is(r.signedXml, fx('D.expected.xml'));
  t.is(r.certificate?.subjectCN, 'АО "РТ Лабс"');
  // with the SMEV certificate as the trusted one
  const trusted = [loadCertificate(fx('D.cert.b64'))];
  t.true(verifyXml(fx('D.envelope.xml'), { containerLocalName: 'SMEVSignature', targetLocalName: 'Response', provider, now: D_NOW, trusted }).ok);
});

// ------------------------------------------------------------------ vector G

test('vector G: verifies; key and certificate load; self-signature verifies', (t) => {
  const r = verifyXml(fx('G.envelope.xml'), {
    containerLocalName: 'CallerInformationSystemSignature',
    targetLocalName: 'SenderProvidedRequestData',
    provider,
    now: G_NOW,
  });
  t.true(r.ok, r.reason);
  t.is(r.signedXml, fx('G.expected.xml'));
  t.is(r.computedDigest, 'E+9dJqNnHEz4XcJXDqNS5plVFyQ+M3mv2gA4M1qxuw8=');
  const cert = loadCertificate(fx('G.cert.pem'));
  t.is(cert.subjectCN, 'test-smev');
  t.is(cert.publicKeyParamSet, OID.cryptoProA);
  t.true(verifyCertificateSignature(cert, cert, provider));
  const key = loadPrivateKey(fx('G.key.pem'));
  t.is(key.paramSet, OID.cryptoProA);
  t.is(key.scalar.length, 32);
  // signing with the OpenSSL-generated key gives signatures its certificate accepts
  const data = Buffer.from('проверка');
  t.true(provider.verify(data, provider.sign(data, key), cert));
});

test('vector G: re-signing the unsigned envelope reproduces the G shape byte for byte (except SignatureValue)', (t) => {
  const G = fx('G.envelope.xml');
  const unsigned = G.replace(/<ds:Signature[\s\S]*<\/ds:Signature>/, '');
  const signer: Signer = { key: loadPrivateKey(fx('G.key.pem')), cert: loadCertificate(fx('G.cert.pem')), provider };
  const signed = signXml(unsigned, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer });
  const mask = (s: string): string => s.replace(/<ds:SignatureValue>[^<]*/, '<ds:SignatureValue>…');
  t.is(mask(signed), mask(G));
});

// ------------------------------------------------------------------ round trip with a generated key

const ENVELOPE = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body>
 <ns2:SendRequestRequest xmlns="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/basic/1.2"
                         xmlns:ns2="urn://x-artefacts-smev-gov-ru/services/message-exchange/types/1.2">
  <ns2:SenderProvidedRequestData Id="SIGNED_BY_CONSUMER">
   <ns2:MessageID>1a77671a-bcc2-11e8-bb3a-6149e818f8fe</ns2:MessageID>
   <MessagePrimaryContent>
    <q:ExportRequest xmlns:q="urn://example/gis/1.0" version="1"><q:Payer>Иванов &amp; К° &gt; "ООО"</q:Payer><!-- note --><q:Sum>100.00</q:Sum></q:ExportRequest>
   </MessagePrimaryContent>
   <ns2:TestMessage/>
  </ns2:SenderProvidedRequestData>
  <ns2:CallerInformationSystemSignature/>
 </ns2:SendRequestRequest>
</soap:Body></soap:Envelope>`;

const pair = generateTestKeyPair({ commonName: 'gkh-bus test', org: 'Test Bank', days: 30 });
const signer: Signer = { key: loadPrivateKey(pair.keyPem), cert: loadCertificate(pair.certPem), provider };
const CALLER = { containerLocalName: 'CallerInformationSystemSignature', targetLocalName: 'SenderProvidedRequestData', provider };
const signed = signXml(ENVELOPE, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer });

test('generateTestKeyPair: certificate loads back and verifies its own signature', (t) => {
  const cert = loadCertificate(pair.certPem);
  t.is(cert.subjectCN, 'gkh-bus test');
  t.is(cert.subject, 'CN=gkh-bus test, O=Test Bank, C=RU');
  t.is(cert.issuer, cert.subject);
  t.is(cert.signatureAlgorithmOid, '1.2.643.7.1.1.3.2');
  t.is(cert.spkiAlgorithmOid, '1.2.643.7.1.1.1.1');
  t.is(cert.publicKeyParamSet, OID.cryptoProA);
  t.is(cert.publicKey.length, 64);
  t.true(cert.notAfter.getTime() - cert.notBefore.getTime() === 30 * 86_400_000);
  t.true(verifyCertificateSignature(cert, cert, provider));
  const other = loadCertificate(generateTestKeyPair({ commonName: 'other' }).certPem);
  t.false(verifyCertificateSignature(cert, other, provider));
  const xa = generateTestKeyPair({ commonName: 'xcha', paramSet: 'XA' });
  const xaCert = loadCertificate(xa.certPem);
  t.is(xaCert.publicKeyParamSet, OID.cryptoProXchA);
  t.true(verifyCertificateSignature(xaCert, xaCert, provider));
  t.is(loadPrivateKey(xa.keyPem).paramSet, OID.cryptoProXchA);
});

test('round trip: sign a SendRequestRequest-like envelope and verify', (t) => {
  // the rest of the document is byte-for-byte unchanged
  const start = signed.indexOf('<ds:Signature');
  const end = signed.indexOf('</ds:Signature>') + '</ds:Signature>'.length;
  t.is(signed.slice(0, start) + signed.slice(end), ENVELOPE.replace('<ns2:CallerInformationSystemSignature/>', '<ns2:CallerInformationSystemSignature></ns2:CallerInformationSystemSignature>'));
  t.false(signed.slice(start, end).includes('\n'));
  const r = verifyXml(signed, { ...CALLER, trusted: [signer.cert] });
  t.true(r.ok, r.reason);
  t.is(r.referenceUri, '#SIGNED_BY_CONSUMER');
  t.regex(r.signedXml!, /<ns3:Payer>Иванов &amp; К° > "ООО"<\/ns3:Payer>/);
});

test('signing into an explicitly empty container <x></x>', (t) => {
  const xml = ENVELOPE.replace('<ns2:CallerInformationSystemSignature/>', '<ns2:CallerInformationSystemSignature>\n  </ns2:CallerInformationSystemSignature>');
  const s = signXml(xml, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer });
  t.true(s.includes('<ns2:CallerInformationSystemSignature><ds:Signature'));
  t.true(verifyXml(s, CALLER).ok);
});

test('signXml refuses a non-empty container, missing target, or a container inside the target', (t) => {
  t.throws(() => signXml(signed, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer }), { message: /not empty/ });
  t.throws(() => signXml(ENVELOPE, { targetId: 'NOPE', containerLocalName: 'CallerInformationSystemSignature', signer }), { message: /no element with Id/ });
  t.throws(() => signXml(ENVELOPE, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'TestMessage', signer }), { message: /inside the signed element/ });
});

test('tampering with one text character → SignatureIsInvalid', (t) => {
  const tampered = signed.replace('100.00', '100.01');
  const r = verifyXml(tampered, CALLER);
  t.false(r.ok);
  t.is(r.fault, 'SignatureIsInvalid');
  t.regex(r.reason!, /digest mismatch/);
});

test('whitespace-only changes and comments inside the signed element do not break the digest', (t) => {
  const reformatted = signed.replace('<ns2:TestMessage/>', '<ns2:TestMessage>\n\t</ns2:TestMessage><!-- x -->');
  t.true(verifyXml(reformatted, CALLER).ok);
});

test('tampered SignatureValue → SignatureIsInvalid', (t) => {
  const m = /<ds:SignatureValue>([^<]+)</.exec(signed)!;
  const bytes = Buffer.from(m[1]!, 'base64');
  bytes[10] = bytes[10]! ^ 1;
  const r = verifyXml(signed.replace(m[1]!, bytes.toString('base64')), CALLER);
  t.is(r.fault, 'SignatureIsInvalid');
  t.regex(r.reason!, /SignatureValue/);
});

test('tampered SignedInfo (DigestValue changed consistently elsewhere) → SignatureIsInvalid', (t) => {
  // swap the signed element's content AND its digest: the digest matches but SignatureValue does not
  const tampered = signed.replace('100.00', '100.01');
  const r1 = verifyXml(tampered, CALLER);
  const forged = tampered.replace(r1.statedDigest!, r1.computedDigest!);
  const r = verifyXml(forged, CALLER);
  t.is(r.fault, 'SignatureIsInvalid');
  t.regex(r.reason!, /SignatureValue does not verify/);
});

/** the ns2 declaration of the signed envelope, for elements copied elsewhere into it */
const typesNs = () => /xmlns:ns2="[^"]+"/.exec(signed)![0];

test('wrapped Reference (Id moved to another element) → IncorrectSignatureTarget', (t) => {
  // the attacker moves Id="SIGNED_BY_CONSUMER" onto a decoy element carrying the original content
  const m = /<ns2:SenderProvidedRequestData Id="SIGNED_BY_CONSUMER">[\s\S]*<\/ns2:SenderProvidedRequestData>/.exec(signed)!;
  const original = m[0];
  const evil = original.replace('Id="SIGNED_BY_CONSUMER"', 'Id="EVIL"').replace('100.00', '999999.00');
  const decoy = original.replace('<ns2:SenderProvidedRequestData ', '<ns2:Wrapper ').replace(/<\/ns2:SenderProvidedRequestData>$/, '</ns2:Wrapper>');
  // (the decoy declares the prefix it uses: a document with an unbound prefix is not even parsed)
  const wrapped = signed.replace(original, evil).replace('<soap:Header/>', `<soap:Header ${typesNs()}>${decoy}</soap:Header>`);
  t.is(findElementsById(parseXmlStrict(wrapped), 'SIGNED_BY_CONSUMER').length, 1);
  const r = verifyXml(wrapped, CALLER);
  t.false(r.ok);
  t.is(r.fault, 'IncorrectSignatureTarget');
});

test('duplicate Id (wrapping attempt) → IncorrectSignatureTarget', (t) => {
  const m = /<ns2:SenderProvidedRequestData Id="SIGNED_BY_CONSUMER">[\s\S]*<\/ns2:SenderProvidedRequestData>/.exec(signed)!;
  const wrapped = signed.replace('<soap:Header/>', `<soap:Header ${typesNs()}>${m[0]}</soap:Header>`);
  const r = verifyXml(wrapped, CALLER);
  t.is(r.fault, 'IncorrectSignatureTarget');
  t.regex(r.reason!, /2 elements carry Id/);
});

test('Reference to an element with the wrong local name → IncorrectSignatureTarget', (t) => {
  const r = verifyXml(signed, { ...CALLER, targetLocalName: 'MessageID' });
  t.is(r.fault, 'IncorrectSignatureTarget');
});

test('untrusted certificate with `trusted` set → CertificateIsNotFound', (t) => {
  const other = loadCertificate(generateTestKeyPair({ commonName: 'someone else' }).certPem);
  const r = verifyXml(signed, { ...CALLER, trusted: [other] });
  t.is(r.fault, 'CertificateIsNotFound');
  t.is(verifyXml(signed, { ...CALLER, trusted: [] }).fault, 'CertificateIsNotFound');
});

test('missing KeyInfo certificate → CertificateIsNotFound', (t) => {
  const noKeyInfo = signed.replace(/<ds:KeyInfo>[\s\S]*<\/ds:KeyInfo>/, '');
  t.is(verifyXml(noKeyInfo, CALLER).fault, 'CertificateIsNotFound');
});

test('expired (and not yet valid) certificate → CertificateIsExpired', (t) => {
  const future = new Date(Date.now() + 400 * 86_400_000);
  t.is(verifyXml(signed, { ...CALLER, now: future }).fault, 'CertificateIsExpired');
  const past = new Date(Date.now() - 2 * 86_400_000);
  t.is(verifyXml(signed, { ...CALLER, now: past }).fault, 'CertificateIsExpired');
  // a certificate generated with a validity period in the past
  const old = generateTestKeyPair({ commonName: 'old', notBefore: new Date('2020-01-01T00:00:00Z'), days: 10 });
  const oldSigner: Signer = { key: loadPrivateKey(old.keyPem), cert: loadCertificate(old.certPem), provider };
  const s = signXml(ENVELOPE, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer: oldSigner });
  t.is(verifyXml(s, CALLER).fault, 'CertificateIsExpired');
});

test('comment inside DigestValue → SignatureIsInvalid', (t) => {
  const withComment = signed.replace(/<ds:DigestValue>([^<]{10})/, '<ds:DigestValue>$1<!-- hi -->');
  const r = verifyXml(withComment, CALLER);
  t.false(r.ok);
  t.is(r.fault, 'SignatureIsInvalid');
  t.regex(r.reason!, /DigestValue/);
  const withElement = signed.replace('</ds:DigestValue>', '<x xmlns="urn:x"/></ds:DigestValue>');
  t.is(verifyXml(withElement, CALLER).fault, 'SignatureIsInvalid');
});

test('no signature in the container → NoSignatureFound', (t) => {
  t.is(verifyXml(ENVELOPE, CALLER).fault, 'NoSignatureFound');
  t.is(verifyXml(ENVELOPE, { ...CALLER, containerLocalName: 'SMEVSignature' }).fault, 'NoSignatureFound');
});

test('two signatures / two References / foreign algorithms → rejected', (t) => {
  const sig = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)![0];
  t.is(verifyXml(signed.replace(sig, sig + sig), CALLER).fault, 'SignatureIsInvalid');
  const ref = /<ds:Reference[\s\S]*<\/ds:Reference>/.exec(signed)![0];
  t.is(verifyXml(signed.replace(ref, ref + ref), CALLER).fault, 'SignatureIsInvalid');
  const onlyC14n = signed.replace('<ds:Transform Algorithm="urn://smev-gov-ru/xmldsig/transform"/>', '');
  t.regex(verifyXml(onlyC14n, CALLER).reason!, /transforms not in the SMEV profile/);
  const sha = signed.replace('gostr34112012-256"/>', 'gostr34112012-512"/>');
  t.is(verifyXml(sha, CALLER).fault, 'SignatureIsInvalid');
});

test('enveloped-signature + inclusive c14n transform lists are accepted', (t) => {
  // the digest does not depend on the c14n variant (the SMEV transform re-serialises), but the
  // SignedInfo changes, so re-sign it: build via signXml then patch Transforms and re-sign SignedInfo.
  const patched = ENVELOPE;
  const s = signXml(patched, { targetId: 'SIGNED_BY_CONSUMER', containerLocalName: 'CallerInformationSystemSignature', signer });
  const variant = s.replace(
    '<ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>',
    '<ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>',
  );
  // SignatureValue no longer matches the modified SignedInfo
  const r = verifyXml(variant, CALLER);
  t.is(r.fault, 'SignatureIsInvalid');
  t.regex(r.reason!, /SignatureValue/); // i.e. the transform list itself was accepted and the digest matched
  t.is(r.computedDigest, r.statedDigest);
});

test('tc26 paramSetA is refused with a clear error', (t) => {
  const paramSetA = OID.tc26_256_A;
  const key = { ...signer.key, paramSet: paramSetA };
  t.throws(() => provider.sign(Buffer.from('x'), key), { instanceOf: UnsupportedParamSetError, message: /paramSetA/ });
  const certA: GostCertificate = { ...signer.cert, publicKeyParamSet: paramSetA };
  t.throws(() => provider.verify(Buffer.from('x'), Buffer.alloc(64), certA), { message: /paramSetA/ });
  // a PKCS#8 key in paramSetA loads (param set recorded) but cannot be used
  const pk = der.seq(der.small(0), der.seq(der.oid(OID.gost2012_256), der.seq(der.oid(paramSetA), der.oid(OID.streebog256))), der.octets(Buffer.alloc(32, 7)));
  const loaded = loadPrivateKey(toPem('PRIVATE KEY', pk));
  t.is(loaded.paramSet, paramSetA);
  t.throws(() => provider.sign(Buffer.from('x'), loaded), { message: /paramSetA/ });
});

test('loadPrivateKey: INTEGER variant and errors', (t) => {
  const g = loadPrivateKey(fx('G.key.pem'));
  const be = Buffer.from(g.scalar).reverse();
  const intVariant = der.seq(der.small(0), der.seq(der.oid(OID.gost2012_256), der.seq(der.oid(OID.cryptoProA), der.oid(OID.streebog256))), der.octets(der.uint(be)));
  t.deepEqual(loadPrivateKey(toPem('PRIVATE KEY', intVariant)).scalar, g.scalar);
  const octVariant = der.seq(der.small(0), der.seq(der.oid(OID.gost2012_256), der.seq(der.oid(OID.cryptoProA))), der.octets(der.octets(g.scalar)));
  t.deepEqual(loadPrivateKey(toPem('PRIVATE KEY', octVariant)).scalar, g.scalar);
  t.throws(() => loadPrivateKey('-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n'), { message: /encrypted/ });
  t.throws(() => loadPrivateKey('nothing'), { message: /PRIVATE KEY/ });
});

test('loadCertificate accepts DER bytes and rejects garbage', (t) => {
  const cert = loadCertificate(fx('G.cert.pem'));
  t.deepEqual(loadCertificate(cert.der).der, cert.der);
  t.throws(() => loadCertificate(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])));
});
