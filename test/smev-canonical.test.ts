/**
 * The canonical writer (transformers/smev/canonical.ts) and LiteDOM (transformers/smev/litedom.ts): the bus signs
 * its packets by hashing the text it sends, so that text must be exactly what the SMEV transform makes of it.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { SmevCanonicalWriter } from '../transformers/smev/canonical.ts';
import { buildSendRequest, buildSendRequestCanonical, parseSmevRequest } from '../transformers/smev/envelope.ts';
import { findElementsById, parseXmlStrict, smevTransform, smevTransformXml } from '../transformers/smev/transform.ts';
import { parseLite } from '../transformers/smev/litedom.ts';
import { outerXmlSubstring, parseXml } from '../transformers/smev/xml.ts';
import { buildNotificationPacket, NotificationPacketError, orderId, writeNotificationPacket, type NotificationItem } from '../transformers/gis/notification.ts';
import { signXml, verifyXml, SmevSignatureError } from '../connectors/smev3/signature.ts';
import { createProvider, generateTestKeyPair, loadCertificate, loadPrivateKey } from '../connectors/smev3/crypto/index.ts';

const provider = createProvider('js');
const pair = generateTestKeyPair({ commonName: 'canonical test' });
const signer = { key: loadPrivateKey(pair.keyPem), cert: loadCertificate(pair.certPem), provider };
const MID = '55ddd970-efa9-11f1-bfb3-933cc61fb7e9';

// text that exercises every escaping rule of the transform: '>' at the start, after ']' and at the 512-unit chunk
// boundaries of long text, CR, TAB, LF, C1 controls, astral characters, quotes, ampersands
const NASTY = [
  '>начало ]]> & <тег> "кавычки" \'апостроф\'',
  'строка\r\nвторая\tтаб\u0085\u009f',
  '😀 эмодзи 𝄞',
  'x'.repeat(511) + '>' + 'y'.repeat(511) + '&>' + 'z'.repeat(100) + ']>',
  '  пробелы по краям  ',
];

function item(n: number): NotificationItem {
  return {
    transportId: `0b6c7d1e-1111-4a2b-9c3d-${String(n).padStart(12, '0')}`,
    orderId: orderId({ bic: '044525225', date: '2021-02-25', sourceKey: `ED101:${n}` }),
    orderDate: '2021-02-25',
    amountKop: 100 + n,
    purpose: NASTY[n % NASTY.length]!.slice(0, 1000),
    paymentDocumentNumber: n % 2 ? 'ПД-1' : undefined,
    recipient: {
      inn: '7701234567', kpp: n % 3 ? '770101001' : undefined, name: `ООО «УК ${NASTY[(n + 1) % NASTY.length]!.slice(0, 150)}»`,
      bankName: 'ПАО Сбербанк', bic: '044525225', account: '40702810938000000001', corrAccount: n % 2 ? '30101810400000000225' : undefined,
    },
    ...(n % 4 === 0 ? { paymentDocumentId: '12АБ345678-01-1234', serviceId: '12АБ345678-01', els: '12АБ345678', accountNumber: 'ЛС-000123', period: { year: 2021, month: 1 } } : {}),
  };
}

const PACKET = { informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', items: Array.from({ length: 40 }, (_, n) => item(n)) };

for (const version of ['1.1', '1.2', '1.3'] as const) {
  test(`${version}: the canonical SenderProvidedRequestData is its own SMEV transform output`, (t) => {
    const env = buildSendRequestCanonical({ version, messageId: MID, testMessage: true, writeContent: (w) => writeNotificationPacket(w, PACKET) });
    t.is(smevTransformXml(env.xml, 'SIGNED_BY_CONSUMER'), env.transformed);
    t.true(env.xml.includes(env.transformed));
    // the content stands alone and carries the same data as the readable form
    const parsed = parseSmevRequest(env.xml);
    t.is(parsed.messageId, MID);
    t.true(parsed.testMessage);
    t.is(parsed.content, env.content);
    t.is(smevTransformXml(env.content), smevTransformXml(buildNotificationPacket(PACKET)));
  });
}

test('signing the prepared element gives the digest a full parse gives, and it verifies', (t) => {
  const env = buildSendRequestCanonical({ version: '1.2', messageId: MID, writeContent: (w) => writeNotificationPacket(w, PACKET) });
  const fast = signXml(env.xml, { targetId: env.signedId, containerLocalName: env.containerLocalName, signer, transformed: env.transformed });
  const slow = signXml(env.xml, { targetId: env.signedId, containerLocalName: env.containerLocalName, signer });
  const digest = (x: string) => /<ds:DigestValue>([^<]+)</.exec(x)![1];
  t.is(digest(fast), digest(slow));
  const v = verifyXml(fast, { containerLocalName: 'CallerInformationSystemSignature', targetLocalName: 'SenderProvidedRequestData', provider });
  t.true(v.ok, v.reason);
  t.is(v.signedXml, env.transformed);
});

test('signXml refuses a prepared element that is not in the document or lacks the Id', (t) => {
  const env = buildSendRequestCanonical({ version: '1.2', messageId: MID, writeContent: (w) => writeNotificationPacket(w, PACKET) });
  const opts = { targetId: env.signedId, containerLocalName: env.containerLocalName, signer };
  t.throws(() => signXml(env.xml.replace('ПАО Сбербанк', 'ПАО Сбербанк!'), { ...opts, transformed: env.transformed }), { instanceOf: SmevSignatureError, message: /not part of the document/ });
  t.throws(() => signXml(env.xml, { ...opts, targetId: 'OTHER', transformed: env.transformed }), { instanceOf: SmevSignatureError, message: /does not carry Id="OTHER"/ });
});

test('the writer refuses what the transform would not keep as written', (t) => {
  const w = new SmevCanonicalWriter();
  w.open('urn:x', 'a');
  w.text(' \t\r\n');
  t.throws(() => w.close(), { message: /whitespace-only/ });
  t.throws(() => new SmevCanonicalWriter().open('', 'a'), { message: /needs a namespace/ });
  const v = new SmevCanonicalWriter();
  v.open('urn:x', 'a');
  v.text('bell \u0007');
  t.throws(() => v.close(), { message: /not allowed in XML 1.0/ });
  const open = new SmevCanonicalWriter();
  open.open('urn:x', 'a');
  t.throws(() => open.toString(), { message: /still open/ });
});

test('the writer numbers prefixes as the transform does: a namespace used by siblings gets a new prefix each time', (t) => {
  const w = new SmevCanonicalWriter();
  w.open('urn:a', 'root', { z: '2', Id: 'X', a: '1' });
  w.leaf('urn:b', 'x', '1');
  w.leaf('urn:b', 'y', '2');
  w.open('urn:a', 'z');
  w.close();
  w.close();
  const out = w.toString();
  t.is(out, '<ns1:root xmlns:ns1="urn:a" Id="X" a="1" z="2"><ns2:x xmlns:ns2="urn:b">1</ns2:x><ns3:y xmlns:ns3="urn:b">2</ns3:y><ns1:z></ns1:z></ns1:root>');
  t.is(smevTransformXml(out), out);
});

test('a blank or non-XML text value is refused for its item (the sender takes that item out, not the packet)', (t) => {
  const bad = { ...PACKET, items: [item(1), { ...item(2), purpose: '   ' }] };
  const e = t.throws(() => buildSendRequestCanonical({ version: '1.2', messageId: MID, writeContent: (w) => writeNotificationPacket(w, bad) }), { instanceOf: NotificationPacketError });
  t.is(e?.itemIndex, 1);
  t.is(e?.field, 'purpose');
  const ctl = { ...PACKET, items: [{ ...item(1), recipient: { ...item(1).recipient, name: 'ООО \u0001' } }] };
  const e2 = t.throws(() => writeNotificationPacket(new SmevCanonicalWriter(), ctl), { instanceOf: NotificationPacketError });
  t.is(e2?.field, 'recipient.name');
});

// ------------------------------------------------------------------------------------------------ LiteDOM

test('LiteDOM gives the transform the same input xmldom did, on every SMEV vector', (t) => {
  const dir = join(import.meta.dirname, 'fixtures/smev');
  for (const f of ['A1', 'A2', 'A3', 'A4', 'B', 'C', 'F01', 'F02', 'F03', 'F04', 'F05', 'F06', 'F07', 'F08', 'F09', 'F10']) {
    const xml = readFileSync(join(dir, `${f}.input.xml`), 'utf8');
    const dom = new DOMParser().parseFromString(xml, 'text/xml') as unknown as Document;
    t.is(smevTransform(parseLite(xml).documentElement!), smevTransform(dom.documentElement), f);
  }
});

test('LiteDOM: XML line ends and attribute whitespace are normalised as the XML spec says', (t) => {
  const out = smevTransform(parseLite('<a:r xmlns:a="urn:x" b="1\t2\r\n3" c="&#9;&#13;">x\r\ny\rz&#13;</a:r>').documentElement!);
  t.is(out, '<ns1:r xmlns:ns1="urn:x" b="1 2 3" c="&#x9;&#xd;">x\ny\nz&#xd;</ns1:r>');
});

test('LiteDOM: element source ranges survive comments, CDATA, PIs, astral characters and CRLF', (t) => {
  const xml = '<?xml version="1.0"?>\r\n<!-- <fake> -->\r\n<r:root xmlns:r="urn:r"><!--x--><r:a k="v>w">😀<![CDATA[<b>]]></r:a>\r\n<?pi <x>?><r:b/></r:root>';
  const doc = parseXml(xml);
  const [a, b] = [...doc.documentElement!.getElementsByTagNameNS('urn:r', 'a'), ...doc.documentElement!.getElementsByTagNameNS('urn:r', 'b')];
  t.is(outerXmlSubstring(xml, a!), '<r:a k="v>w">😀<![CDATA[<b>]]></r:a>');
  t.is(outerXmlSubstring(xml, b!), '<r:b/>');
  t.is(outerXmlSubstring(xml, doc.documentElement!), xml.slice(xml.indexOf('<r:root')));
  t.is(a!.textContent, '😀<b>');
});

test('LiteDOM refuses what is not namespace-well-formed XML, naming line and column', (t) => {
  for (const [bad, why] of [
    ['<a>', /unclosed tag/], ['<a/><b/>', /only one root/], ['x<a/>', /outside of root/], ['<p:a/>', /unbound namespace prefix/],
    ['<a>&foo;</a>', /undefined entity/], ['<a></b>', /unexpected close tag/], ['<a x="1" x="2"/>', /duplicate attribute/],
  ] as const) {
    t.throws(() => parseXmlStrict(bad), { message: why }, bad);
  }
  t.throws(() => parseXml('<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'), { message: /DOCTYPE/ });
  t.throws(() => parseXmlStrict('<a>\n  <b></c>\n</a>'), { message: /^XML parse error: 2:\d+: / });
});

test('the readable packet and the canonical one are the same document to a parser', (t) => {
  const readable = parseLite(buildNotificationPacket(PACKET));
  const env = buildSendRequestCanonical({ version: '1.2', messageId: MID, writeContent: (w) => writeNotificationPacket(w, PACKET) });
  const canonical = parseLite(env.content);
  t.is(smevTransform(canonical.documentElement!), smevTransform(readable.documentElement!));
  // and the readable SendRequest (content pasted in) signs to the same digest as the canonical one
  const plain = buildSendRequest({ version: '1.2', messageId: MID, content: buildNotificationPacket(PACKET) });
  const el = findElementsById(parseXmlStrict(plain.xml), 'SIGNED_BY_CONSUMER')[0]!;
  t.is(smevTransform(el), env.transformed);
});
