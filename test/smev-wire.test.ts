/**
 * The wire as SMEV speaks it: versions 1.1, 1.2 (MTOM replies) and 1.3 end to end through the bus;
 * redelivery of unacknowledged messages; asynchronous rejection; GetStatus with SMEV's signature checked.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { v1 as uuidv1 } from 'uuid';
import { startHarness, waitFor, type Harness } from './helpers/harness.ts';
import { SmevClient } from '../connectors/smev3/client.ts';
import { createProvider, loadCertificate, generateTestKeyPair } from '../connectors/smev3/crypto/index.ts';
import { loadSigner } from '../gateway/keys.ts';
import { smevNamespaces, type SmevVersion } from '../transformers/smev/envelope.ts';

const HEADER = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';
function drop(h: Harness, op: string): void {
  writeFileSync(join(h.config.inbox.path, `${op}.csv`),
    HEADER + `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;"Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025";41,07;0,00\r\n`);
}
async function finalStatus(h: Harness, op: string): Promise<string> {
  return waitFor(async () => {
    const [p] = await h.bus.store.query<{ status: string }>(`SELECT status FROM payments WHERE source_key LIKE $1`, [`%:${op}`]);
    return p && ['ACCEPTED', 'REJECTED'].includes(p.status) ? p.status : undefined;
  }, 30_000, `final status of ${op}`);
}

const cases: { version: SmevVersion; mtom: boolean }[] = [
  { version: '1.1', mtom: false }, { version: '1.3', mtom: false }, { version: '1.2', mtom: true }, { version: '1.3', mtom: true },
];
for (const { version, mtom } of cases) {
  test(`wire ${version}${mtom ? ' with MTOM multipart replies' : ''}: a payment goes from file to ACCEPTED; every message speaks ${version}`, async (t) => {
    const h = await startHarness(`wire${version.replace('.', '')}${mtom ? 'm' : ''}`, { 'smev.version': version }, { sim: { mtom } });
    try {
      const op = `W-${version}-${mtom ? 'm' : 'x'}-${process.pid}`;
      drop(h, op);
      t.is(await finalStatus(h, op), 'ACCEPTED');
      // the Ack follows the commit of the answer: wait for it
      const rows = await waitFor(async () => {
        const x = await h.bus.store.query<{ operation: string; request_xml: string; response_xml: string; status: string }>(
          `SELECT operation, request_xml, response_xml, status FROM smev_messages ORDER BY id`);
        return x.some((r) => r.operation === 'Ack') ? x : undefined;
      }, 10_000, 'the Ack');
      const ns = smevNamespaces(version).types;
      t.true(rows.length >= 3, 'SendRequest, GetResponse and Ack were recorded');
      for (const r of rows) {
        t.is(r.status, 'ok', `${r.operation}: ${r.status}`);
        t.true(r.request_xml.includes(ns), `${r.operation} request in ${ns}`);
        if (r.response_xml) t.true(r.response_xml.includes(ns) && r.response_xml.startsWith('<'), `${r.operation} response is the SOAP part in ${ns}`);
      }
    } finally {
      await h.close();
    }
  });
}

test('an unacknowledged response is delivered again after the configured time, not before; GetStatus reports processing, signed by SMEV', async (t) => {
  const h = await startHarness('wire-redeliver', { 'smev.pollMinMs': 60_000, 'smev.pollMaxMs': 60_000 }, { sim: { redeliverAfterMs: 5000 } });
  try {
    const provider = createProvider('js');
    const client = new SmevClient({
      endpoint: h.config.smev.endpoint, version: '1.2', signer: loadSigner(h.keys, 'bank', provider),
      trusted: [loadCertificate(readFileSync(join(h.keys, 'smev.cert.pem')))], provider, timeoutMs: 10_000, testMessage: false,
      store: h.bus.store, log: h.log,
    });
    await h.bus.poller.stop(); // this test polls by hand
    const { buildNotificationPacket } = await import('../transformers/gis/notification.ts');
    const content = buildNotificationPacket({
      informationSystemId: h.config.gis.informationSystemId, organizationId: h.config.gis.organizationId,
      items: [{ transportId: '0b3c6f0e-0d8c-4d7a-9a11-2f1d4c5b6a70', orderId: '04459910105112500000000000000001', orderDate: '2025-11-05', amountKop: 1000, purpose: 'ЖКУ',
        recipient: { inn: '9909630905', kpp: '990901001', name: 'ООО "УК"', bankName: 'Банк', bic: '044599202', account: '40702810502000012345' } }],
    });
    const id = uuidv1();
    const sent = await client.sendRequest(id, content);
    t.is(sent.kind, 'ok');
    const first = await waitFor(async () => {
      const r = await client.getResponse();
      return r.kind === 'ok' && r.parsed.kind === 'GetResponseResponse' && !r.parsed.empty ? r.parsed : undefined;
    }, 10_000, 'the response');
    t.is(first.originalMessageId, id);
    // delivered, not acknowledged: the queue looks empty until the redelivery time has passed
    const again = await client.getResponse();
    t.true(again.kind === 'ok' && again.parsed.kind === 'GetResponseResponse' && again.parsed.empty, `not redelivered at once: ${JSON.stringify('parsed' in again ? again.parsed : again).slice(0, 400)}`);
    const later = await waitFor(async () => {
      const r = await client.getResponse();
      return r.kind === 'ok' && r.parsed.kind === 'GetResponseResponse' && !r.parsed.empty ? r.parsed : undefined;
    }, 20_000, 'redelivery');
    t.is(later.messageId, first.messageId);
    t.is((await client.ack(later.messageId, true)).kind, 'ok');
    await new Promise((r) => setTimeout(r, 5200));
    const gone = await client.getResponse();
    t.true(gone.kind === 'ok' && gone.parsed.kind === 'GetResponseResponse' && gone.parsed.empty, 'acknowledged: never again');

    // GetStatus: the request passed SMEV's asynchronous validation; the status is signed by SMEV and verified
    const st = await client.getStatus();
    t.is(st.kind, 'ok');
    t.true(st.kind === 'ok' && st.parsed.kind === 'GetStatusResponse' && !st.parsed.empty && st.parsed.status?.category === 'requestIsAcceptedBySmev');
    const none = await client.getStatus();
    t.true(none.kind === 'ok' && none.parsed.kind === 'GetStatusResponse' && none.parsed.empty);

    // a GetStatus answer checked against a certificate that is not SMEV's is not used
    const stranger = loadCertificate(generateTestKeyPair({ commonName: 'not SMEV' }).certPem);
    const wary = new SmevClient({
      endpoint: h.config.smev.endpoint, version: '1.2', signer: loadSigner(h.keys, 'bank', provider), trusted: [stranger], provider,
      timeoutMs: 10_000, testMessage: false, store: h.bus.store, log: h.log,
    });
    const id2 = uuidv1();
    t.is((await wary.sendRequest(id2, content.replace('04459910105112500000000000000001', '04459910105112500000000000000002'))).kind, 'untrusted');
    const st2 = await waitFor(async () => {
      const r = await wary.getStatus();
      return 'parsed' in r && !(r.parsed.kind === 'GetStatusResponse' && r.parsed.empty) ? r : undefined;
    }, 10_000, 'status of the second request');
    t.is(st2.kind, 'untrusted');
  } finally {
    await h.close();
  }
});

test('a packet that fails ГИС schema validation comes back as requestIsRejectedBySmev through GetResponse and GetStatus', async (t) => {
  const h = await startHarness('wire-async', { 'smev.pollMinMs': 60_000, 'smev.pollMaxMs': 60_000 });
  try {
    await h.bus.poller.stop();
    const provider = createProvider('js');
    const client = new SmevClient({
      endpoint: h.config.smev.endpoint, version: '1.2', signer: loadSigner(h.keys, 'bank', provider),
      trusted: [loadCertificate(readFileSync(join(h.keys, 'smev.cert.pem')))], provider, timeoutMs: 10_000, testMessage: false,
      store: h.bus.store, log: h.log,
    });
    // the right root element (so SMEV takes it synchronously) but content the schema refuses
    const content = '<ImportNotificationsOfOrderExecutionRequest xmlns="urn:dom.gosuslugi.ru/payments/1.0.0" Id="x"><unexpected/></ImportNotificationsOfOrderExecutionRequest>';
    const id = uuidv1();
    t.is((await client.sendRequest(id, content)).kind, 'ok');
    const r = await waitFor(async () => {
      const x = await client.getResponse();
      return x.kind === 'ok' && x.parsed.kind === 'GetResponseResponse' && !x.parsed.empty ? x.parsed : undefined;
    }, 10_000, 'the async status');
    t.is(r.originalMessageId, id);
    t.is(r.asyncStatus?.category, 'requestIsRejectedBySmev');
    t.is(r.asyncStatus?.fault?.type, 'InvalidContent');
    t.true((r.asyncStatus?.fault?.validationErrors?.length ?? 0) > 0);
    const st = await client.getStatus();
    t.true(st.kind === 'ok' && st.parsed.kind === 'GetStatusResponse' && st.parsed.status?.category === 'requestIsRejectedBySmev');
  } finally {
    await h.close();
  }
});
