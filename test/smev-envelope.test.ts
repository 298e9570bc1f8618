import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadSchemaSet, validate, type SchemaSetName } from '../connectors/xsd/validator.ts';
import {
  buildAckRequest,
  buildAckResponse,
  buildFault,
  buildGetResponseRequest,
  buildGetResponseResponse,
  buildGetStatusRequest,
  buildGetStatusResponse,
  buildSendRequest,
  buildSendRequestResponse,
  formatDateTime,
  parseSmevRequest,
  parseSmevResponse,
  type SmevVersion,
} from '../transformers/smev/envelope.ts';
import { faultDisposition } from '../transformers/smev/faults.ts';
import { buildNotificationPacket, orderId } from '../transformers/gis/notification.ts';
import { buildImportResult } from '../transformers/gis/result.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/smev-envelope/${name}`, import.meta.url), 'utf8');

const MID = 'ac9fbf27-8b8c-11eb-9086-e2bf794ac2e9';
const MID2 = 'b09d7e45-3959-11f1-a763-938a8f3d61d2';
const DS = '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>';
/** What the signer will do: fill the empty container(s). */
const sign = (xml: string) =>
  xml
    .replace(/(<ns2:(CallerInformationSystemSignature|SMEVSignature|SenderInformationSystemSignature)>)(<\/ns2:\2>)/g, `$1${DS}$3`);

const packet = buildNotificationPacket({
  informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
  items: [
    {
      transportId: '0b6c7d1e-1111-4a2b-9c3d-000000000001',
      orderId: orderId({ bic: '044525225', date: '2021-02-25', sourceKey: 'k1' }),
      orderDate: '2021-02-25',
      amountKop: 100,
      purpose: 'Оплата & <ЖКУ>',
      recipient: { inn: '7701234567', kpp: '770101001', name: 'УК', bankName: 'Банк', bic: '044525225', account: '40702810938000000001' },
    },
  ],
});

const VERSIONS: SmevVersion[] = ['1.1', '1.2', '1.3'];

for (const version of VERSIONS) {
  const setName = `smev-${version}` as SchemaSetName;

  test(`${version}: client requests are XSD-valid (whole envelope and bare element) once signed`, async (t) => {
    const set = await loadSchemaSet(setName);
    const ts = new Date('2021-03-23T04:03:07.123Z');
    const reqs = [
      buildSendRequest({ version, messageId: MID, content: packet, testMessage: true, transactionCode: 'tc-1', referenceMessageId: MID, nodeId: 'node1', eol: ts }),
      buildSendRequest({ version, messageId: MID, content: packet }),
      buildGetResponseRequest({ version, timestamp: ts }),
      buildGetResponseRequest({ version, timestamp: ts, namespaceUri: 'urn:dom.gosuslugi.ru/payments/1.0.0', rootElementLocalName: 'ImportNotificationsOfOrderExecutionResponse', nodeId: 'n' }),
      buildAckRequest({ version, messageId: MID2, accepted: true }),
      buildAckRequest({ version, messageId: MID2, accepted: false }),
      buildGetStatusRequest({ version, timestamp: ts }),
    ];
    for (const r of reqs) {
      t.is(r.containerLocalName, 'CallerInformationSystemSignature');
      t.true(r.xml.includes('<ns2:CallerInformationSystemSignature></ns2:CallerInformationSystemSignature>'));
      t.true(r.xml.includes(`Id="${r.signedId}"`));
      t.true(r.xml.includes('<soap:Header/>'));
    }
    const results = await Promise.all(reqs.map((r) => validate(sign(r.xml), set)));
    results.forEach((res, i) => t.deepEqual(res.errors, [], `request ${i}`));
    // bare body element
    const bare = sign(reqs[0]!.xml).replace(/^.*<soap:Body>/, '').replace(/<\/soap:Body>.*$/, '');
    t.true((await validate(bare, set)).valid);
    // unsigned (empty container) is invalid: the schema needs a ds:Signature
    t.false((await validate(reqs[4]!.xml, set)).valid);
  });

  test(`${version}: parseSmevRequest round trips`, (t) => {
    const ts = new Date('2021-03-23T04:03:07.123Z');
    const s = parseSmevRequest(buildSendRequest({ version, messageId: MID, content: packet, testMessage: true, transactionCode: 'tc' }).xml);
    t.is(s.version, version);
    t.is(s.operation, 'SendRequest');
    t.is(s.messageId, MID);
    t.is(s.content, packet);
    t.deepEqual(s.contentRoot, { ns: 'urn:dom.gosuslugi.ru/payments/1.0.0', local: 'ImportNotificationsOfOrderExecutionRequest' });
    t.is(s.signedId, 'SIGNED_BY_CONSUMER');
    t.true(s.testMessage);
    t.is(s.transactionCode, 'tc');
    t.true(s.hasSignatureContainer);
    t.false(s.hasSignature);
    t.true(parseSmevRequest(sign(buildSendRequest({ version, messageId: MID, content: packet }).xml)).hasSignature);

    const g = parseSmevRequest(buildGetResponseRequest({ version, timestamp: ts, namespaceUri: 'urn:x', rootElementLocalName: 'Y' }).xml);
    t.is(g.operation, 'GetResponse');
    t.is(g.timestamp, '2021-03-23T07:03:07.123+03:00');
    t.is(g.namespaceUri, 'urn:x');
    t.is(g.rootElementLocalName, 'Y');
    t.is(g.signedId, 'SIGNED_BY_CALLER');

    const a = parseSmevRequest(buildAckRequest({ version, messageId: MID2, accepted: false }).xml);
    t.is(a.operation, 'Ack');
    t.is(a.ackTarget, MID2);
    t.false(a.accepted);

    const st = parseSmevRequest(buildGetStatusRequest({ version, timestamp: ts }).xml);
    t.is(st.operation, 'GetStatus');
    t.is(st.timestamp, '2021-03-23T07:03:07.123+03:00');
  });

  test(`${version}: SMEV response builders parse back with parseSmevResponse`, async (t) => {
    const sr = buildSendRequestResponse({ version, messageId: MID, sender: { mnemonic: '77BD01', name: 'Bank' }, recipient: 'emu', sendingTimestamp: new Date() });
    t.is(sr.signedId, 'SIGNED_BY_SMEV');
    const p1 = parseSmevResponse(sr.xml);
    t.is(p1.kind, 'SendRequestResponse');
    if (p1.kind === 'SendRequestResponse') {
      t.is(p1.messageId, MID);
      t.is(p1.status, 'requestIsQueued');
      t.true(p1.metadataXml.startsWith('<ns2:MessageMetadata Id="SIGNED_BY_SMEV">'));
    }

    const empty = parseSmevResponse(buildGetResponseResponse({ version }).xml);
    t.deepEqual(empty, { kind: 'GetResponseResponse', version, empty: true });

    const result = buildImportResult({ results: [{ transportId: '0b6c7d1e-1111-4a2b-9c3d-000000000001', success: { id: '5f2d8c1a-2222-4b3c-8d4e-000000000001', updateDate: '2021-02-26T10:15:00+03:00' } }] });
    const gr = buildGetResponseResponse({
      version,
      message: { originalMessageId: MID, messageId: MID2, content: result, sender: 'GISGKH', recipient: '77BD01', sendingTimestamp: new Date(), deliveryTimestamp: new Date() },
    });
    const p2 = parseSmevResponse(gr.xml);
    t.is(p2.kind, 'GetResponseResponse');
    if (p2.kind === 'GetResponseResponse' && !p2.empty) {
      t.is(p2.messageId, MID2);
      t.is(p2.originalMessageId, MID);
      t.is(p2.content, result);
      t.is(p2.contentRoot?.local, 'ImportNotificationsOfOrderExecutionResponse');
      t.is(p2.providerId, 'SIGNED_BY_PROVIDER');
      t.is(p2.metadata.sender, 'GISGKH');
    } else t.fail();

    const as = buildGetResponseResponse({
      version,
      message: {
        originalMessageId: MID,
        messageId: MID2,
        asyncStatus: { category: 'requestIsRejectedBySmev', details: 'Бизнес-данные…', fault: { type: 'InvalidContent', code: '028122', description: 'SMEV-403: bad', validationErrors: ['e1', 'e2'] } },
        sender: 'SMEV',
        recipient: '77BD01',
        sendingTimestamp: new Date(),
      },
    });
    const p3 = parseSmevResponse(as.xml);
    if (p3.kind === 'GetResponseResponse' && !p3.empty) {
      t.is(p3.providerId, 'SIGNED_ASYNC_BY_SMEV');
      t.is(p3.asyncStatus?.category, 'requestIsRejectedBySmev');
      t.is(p3.asyncStatus?.fault?.type, 'InvalidContent');
      t.is(p3.asyncStatus?.fault?.smevCode, 'SMEV-403');
      t.deepEqual(p3.asyncStatus?.fault?.validationErrors, ['e1', 'e2']);
    } else t.fail();

    t.deepEqual(parseSmevResponse(buildAckResponse({ version }).xml), { kind: 'AckResponse', version });
    const gs = parseSmevResponse(buildGetStatusResponse({ version, status: { originalMessageId: MID, category: 'requestIsQueued' } }).xml);
    t.like(gs, { kind: 'GetStatusResponse', empty: false, status: { originalMessageId: MID, category: 'requestIsQueued' } });

    const f = parseSmevResponse(
      buildFault({ version, name: 'SignatureVerificationFault', code: 'X:1', description: 'SMEV-100:Отсутствует ЭП-ОВ', faultstring: 'Отсутствует ЭП-ОВ', signatureFault: 'NoSignatureFound' }),
    );
    t.like(f, { kind: 'fault', fault: { name: 'SignatureVerificationFault', smevCode: 'SMEV-100', signatureFault: 'NoSignatureFound', code: 'X:1' } });
    const f2 = parseSmevResponse(
      buildFault({ version, name: 'InvalidContent', code: '1', description: 'SMEV-403:bad', faultstring: 'bad', validationErrors: ['v1'] }),
    );
    t.like(f2, { kind: 'fault', fault: { name: 'InvalidContent', validationErrors: ['v1'] } });
    const f3 = parseSmevResponse(
      buildFault({ version, name: 'BusinessDataTypeIsNotSupported', code: '1', description: 'd', faultstring: 'x', extra: { RootElementLocalName: 'A', RootElementNamespaceURI: 'urn:a' } }),
    );
    t.like(f3, { kind: 'fault', fault: { extra: { RootElementLocalName: 'A', RootElementNamespaceURI: 'urn:a' } } });

    // 1.1 and 1.3 SMEV-side responses are valid against the official XSDs (1.2 metadata is not 1.1-shaped)
    if (version !== '1.2') {
      const set = await loadSchemaSet(setName);
      const docs = [sr.xml, gr.xml, as.xml, buildGetResponseResponse({ version }).xml, buildAckResponse({ version }).xml].map(sign);
      docs.push(buildFault({ version, name: 'SignatureVerificationFault', code: 'X', description: 'SMEV-100:x', faultstring: 'x', signatureFault: 'NoSignatureFound' }));
      docs.push(buildFault({ version, name: 'TargetMessageIsNotFound', code: 'X', description: 'SMEV-501:x', faultstring: 'x' }));
      const rs = await Promise.all(docs.map((d) => validate(d, set)));
      rs.forEach((r, i) => t.deepEqual(r.errors, [], `doc ${i}`));
    }
  });
}

test('real 1.2 samples parse: SignatureVerificationFault, TargetMessageIsNotFound, empty queue, SendRequestResponse, async rejection', (t) => {
  const f = parseSmevResponse(fixture('fault-signature-1.2.xml'));
  t.deepEqual(f, {
    kind: 'fault',
    version: '1.2',
    fault: {
      name: 'SignatureVerificationFault',
      faultcode: 'soap:Server',
      faultstring: 'Срок действия сертификата ЭП-ОВ истёк. Сертификат действителен до 2021-02-18 10:07',
      version: '1.2',
      code: 'tsmev3:PRODUCTION_AREA:TSMEV3_CORE2 : TR:SYNC:SPS:4',
      description: 'SMEV-100:Срок действия сертификата ЭП-ОВ истёк. Сертификат действителен до 2021-02-18 10:07',
      signatureFault: 'CertificateIsExpired',
      smevCode: 'SMEV-100',
    },
  });
  const f2 = parseSmevResponse(fixture('fault-target-not-found-1.2.xml'));
  t.like(f2, { kind: 'fault', fault: { name: 'TargetMessageIsNotFound', smevCode: 'SMEV-501' } });
  if (f2.kind === 'fault') t.is(faultDisposition(f2.fault.name), 'park');

  t.deepEqual(parseSmevResponse(fixture('empty-queue-1.2.xml')), { kind: 'GetResponseResponse', version: '1.2', empty: true });
  t.like(parseSmevResponse(fixture('send-request-response-1.2.xml')), { kind: 'SendRequestResponse', version: '1.2', messageId: MID, status: 'requestIsQueued' });

  const a = parseSmevResponse(fixture('async-rejected-1.2.xml'));
  t.like(a, {
    kind: 'GetResponseResponse',
    empty: false,
    messageId: MID2,
    originalMessageId: 'b077cd84-3959-11f1-b8b2-0242333cce59',
    providerId: 'SIGNED_ASYNC_BY_SMEV',
    hasSmevSignature: true,
    asyncStatus: { category: 'requestIsRejectedBySmev', fault: { type: 'InvalidContent', code: '028122', smevCode: 'SMEV-403' } },
    metadata: { sender: 'SMEV', status: 'messageIsDelivered' },
  });
});

test('real 1.2 faults and empty queue validate against the derived 1.2 schemas', async (t) => {
  const set = await loadSchemaSet('smev-1.2');
  for (const f of ['fault-signature-1.2.xml', 'fault-target-not-found-1.2.xml', 'empty-queue-1.2.xml']) {
    t.deepEqual((await validate(fixture(f), set)).errors, [], f);
  }
});

test('faultDisposition', (t) => {
  t.is(faultDisposition('SMEVFailure'), 'retry');
  t.is(faultDisposition('DestinationOverflow'), 'retry');
  t.is(faultDisposition('MessageIsAlreadySent'), 'delivered');
  t.is(faultDisposition('StaleMessageId'), 'rebuild');
  t.is(faultDisposition('SignatureVerificationFault'), 'park');
  t.is(faultDisposition('Whatever'), 'park');
});

test('formatDateTime uses +03:00 with milliseconds; builders reject bad ids and foreign content', (t) => {
  t.is(formatDateTime(new Date('2018-09-20T13:22:49.874Z')), '2018-09-20T16:22:49.874+03:00');
  t.throws(() => buildSendRequest({ version: '1.2', messageId: 'NOT-A-UUID', content: packet }));
  t.throws(() => buildSendRequest({ version: '1.2', messageId: MID, content: '<a>no namespace</a>' }));
  t.throws(() => buildSendRequest({ version: '1.2', messageId: MID, content: '<a xmlns="urn:a"><b></a>' }));
  t.throws(() => parseSmevRequest('<!DOCTYPE a><a/>'));
});

test('validator throughput (batched)', async (t) => {
  const set = await loadSchemaSet('smev-1.2');
  const xml = sign(buildSendRequest({ version: '1.2', messageId: MID, content: packet }).xml);
  const N = 300;
  const t0 = Date.now();
  const rs = await Promise.all(Array.from({ length: N }, () => validate(xml, set)));
  const rate = (N * 1000) / (Date.now() - t0);
  t.log(`${rate.toFixed(0)} validations/s`);
  t.true(rs.every((r) => r.valid));
});
