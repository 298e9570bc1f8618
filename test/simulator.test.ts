import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { v1 as uuidv1, v4 as uuidv4 } from 'uuid';
import { startHarness, type Harness } from './helpers/harness.ts';
import { buildAckRequest, buildGetResponseRequest, buildSendRequest, parseSmevResponse } from '../transformers/smev/envelope.ts';
import { signXml, type Signer } from '../connectors/smev3/signature.ts';
import { createProvider, generateTestKeyPair, loadCertificate, loadPrivateKey } from '../connectors/smev3/crypto/index.ts';
import { loadSigner } from '../gateway/keys.ts';
import { buildNotificationPacket } from '../transformers/gis/notification.ts';

let h: Harness;
let bank: Signer;
const provider = createProvider('js');
test.before(async () => {
  h = await startHarness('sim', {}, { startBus: false });
  bank = loadSigner(h.keys, 'bank', provider);
});
test.after.always(async () => { await h?.close(); });

const ID = '6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const packet = () => buildNotificationPacket({
  informationSystemId: ID, organizationId: ID,
  items: [{
    transportId: uuidv4(), orderId: '4044599101051125' + 'AbCdEfGh12345678', orderDate: '2025-11-05', amountKop: 1000, purpose: 'ЖКУ',
    recipient: { inn: '9909630905', kpp: '990901001', name: 'ООО "УК "Жилсервис-Пример""', bankName: 'ПАО "Примерный банк"', bic: '044599202', account: '40702810502000012345' },
  }],
});

async function post(xml: string) {
  const r = await fetch(h.config.smev.endpoint, { method: 'POST', headers: { 'content-type': 'text/xml; charset=UTF-8' }, body: xml });
  return { status: r.status, parsed: parseSmevResponse(await r.text()) };
}
const fault = (r: Awaited<ReturnType<typeof post>>) => (r.parsed.kind === 'fault' ? r.parsed.fault : undefined);
function sendRequest(messageId = uuidv1(), signer: Signer | null = bank, content = packet()) {
  const env = buildSendRequest({ version: '1.2', messageId, content });
  return signer ? signXml(env.xml, { targetId: env.signedId, containerLocalName: env.containerLocalName, signer }) : env.xml;
}

test('unsigned SendRequest → SignatureVerificationFault (schema first: the empty container is InvalidContent)', async (t) => {
  const r = await post(sendRequest(uuidv1(), null));
  t.is(r.status, 500);
  t.is(fault(r)?.name, 'InvalidContent');
  t.regex(fault(r)?.description ?? '', /^SMEV-403:/);
  const noContainer = sendRequest(uuidv1(), null).replace(/<ns2:CallerInformationSystemSignature><\/ns2:CallerInformationSystemSignature>/, '');
  const f = fault(await post(noContainer));
  t.is(f?.name, 'SignatureVerificationFault');
  t.is(f?.signatureFault, 'NoSignatureFound');
});

test('a changed character after signing → SignatureVerificationFault / SignatureIsInvalid, SMEV-100', async (t) => {
  const xml = sendRequest().replace('ЖКУ', 'ЖКХ');
  const f = fault(await post(xml));
  t.is(f?.name, 'SignatureVerificationFault');
  t.is(f?.signatureFault, 'SignatureIsInvalid');
  t.is(f?.smevCode, 'SMEV-100');
});

test('a certificate SMEV does not know → SenderIsNotRegistered', async (t) => {
  const other = generateTestKeyPair({ commonName: 'stranger' });
  const signer = { key: loadPrivateKey(other.keyPem), cert: loadCertificate(other.certPem), provider };
  t.is(fault(await post(sendRequest(uuidv1(), signer)))?.name, 'SenderIsNotRegistered');
});

test('MessageID rules: not v1 → InvalidMessageIdFormat; old → StaleMessageId; twice → MessageIsAlreadySent', async (t) => {
  t.is(fault(await post(sendRequest(uuidv4())))?.name, 'InvalidMessageIdFormat');
  const old = uuidv1({ msecs: Date.now() - 3 * 86_400_000 });
  t.is(fault(await post(sendRequest(old)))?.name, 'StaleMessageId');
  const id = uuidv1();
  const first = await post(sendRequest(id));
  t.is(first.parsed.kind, 'SendRequestResponse');
  t.is(fault(await post(sendRequest(id)))?.name, 'MessageIsAlreadySent');
});

test('an unregistered business type → BusinessDataTypeIsNotSupported', async (t) => {
  const r = await post(sendRequest(uuidv1(), bank, '<x:Other xmlns:x="urn:example:other"><x:a>1</x:a></x:Other>'));
  t.is(fault(r)?.name, 'BusinessDataTypeIsNotSupported');
});

test('GetResponse with a Timestamp 2 hours off → InvalidContent SMEV-403; Ack of an unknown message → TargetMessageIsNotFound SMEV-501', async (t) => {
  const g = buildGetResponseRequest({ version: '1.2', timestamp: new Date(Date.now() - 2 * 3_600_000) });
  const r = fault(await post(signXml(g.xml, { targetId: g.signedId, containerLocalName: g.containerLocalName, signer: bank })));
  t.is(r?.name, 'InvalidContent');
  t.regex(r?.description ?? '', /^SMEV-403:Метка времени/);
  const a = buildAckRequest({ version: '1.2', messageId: uuidv1(), accepted: true });
  const f = fault(await post(signXml(a.xml, { targetId: a.signedId, containerLocalName: a.containerLocalName, signer: bank })));
  t.is(f?.name, 'TargetMessageIsNotFound');
  t.is(f?.smevCode, 'SMEV-501');
});

test('a queued packet is answered through GetResponse, signed by SMEV; unacknowledged it stays pending', async (t) => {
  const id = uuidv1();
  t.is((await post(sendRequest(id))).parsed.kind, 'SendRequestResponse');
  await new Promise((r) => setTimeout(r, 200));
  let got;
  for (let i = 0; i < 20 && !got; i++) {
    const g = buildGetResponseRequest({ version: '1.2', timestamp: new Date() });
    const r = await post(signXml(g.xml, { targetId: g.signedId, containerLocalName: g.containerLocalName, signer: bank }));
    if (r.parsed.kind === 'GetResponseResponse' && !r.parsed.empty && r.parsed.originalMessageId === id) got = r.parsed;
    else if (r.parsed.kind === 'GetResponseResponse' && !r.parsed.empty) {
      const a = buildAckRequest({ version: '1.2', messageId: r.parsed.messageId, accepted: true });
      await post(signXml(a.xml, { targetId: a.signedId, containerLocalName: a.containerLocalName, signer: bank }));
    } else await new Promise((res) => setTimeout(res, 100));
  }
  t.truthy(got);
  t.regex(got!.content!, /ImportNotificationsOfOrderExecutionResponse/);
  const a = buildAckRequest({ version: '1.2', messageId: got!.messageId, accepted: true });
  const ack = await post(signXml(a.xml, { targetId: a.signedId, containerLocalName: a.containerLocalName, signer: bank }));
  t.is(ack.parsed.kind, 'AckResponse');
  void readFileSync; void join;
});

test('an expired certificate → CertificateIsExpired; a signature without its certificate → CertificateIsNotFound (SMEV-100)', async (t) => {
  const old = generateTestKeyPair({ commonName: 'expired', notBefore: new Date(Date.now() - 3 * 86_400_000), days: 1 });
  const expired = { key: loadPrivateKey(old.keyPem), cert: loadCertificate(old.certPem), provider };
  const f1 = fault(await post(sendRequest(uuidv1(), expired)));
  t.is(f1?.name, 'SignatureVerificationFault');
  t.is(f1?.signatureFault, 'CertificateIsExpired');
  const noCert = sendRequest().replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/, '');
  t.not(noCert, sendRequest(), 'KeyInfo removed');
  const f2 = fault(await post(noCert));
  t.is(f2?.name, 'SignatureVerificationFault');
  t.is(f2?.signatureFault, 'CertificateIsNotFound');
  t.is(f2?.smevCode, 'SMEV-100');
});
