import test from 'ava';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, waitFor, SAMPLES, type Harness } from './helpers/harness.ts';
import { loadSchemaSet, validate } from '../connectors/xsd/validator.ts';
import { verifyXml } from '../connectors/smev3/signature.ts';
import { createProvider, loadCertificate } from '../connectors/smev3/crypto/index.ts';
import { parseSmevRequest } from '../transformers/smev/envelope.ts';

let h: Harness;
test.before(async () => { h = await startHarness('e2e'); });
test.after.always(async () => { await h?.close(); });

const payments = (fileId: number) => h.bus.store.query<{ id: number; ref: string; status: string; order_id: string | null; gis_id: string | null }>(
  'SELECT id, ref, status, order_id, gis_id FROM payments WHERE file_id = $1 ORDER BY id', [fileId]);
const fileRow = (name: string) => h.bus.store.query<{ id: number; status: string; reason: string | null; payments_added: number }>(
  'SELECT id, status, reason, payments_added FROM files WHERE name = $1 ORDER BY id DESC LIMIT 1', [name]).then((r) => r[0]);

test.serial('a UFEBS file dropped in the inbox ends ACCEPTED at ГИС, through RabbitMQ, PostgreSQL and the simulator', async (t) => {
  copyFileSync(join(SAMPLES, 'ufebs/PacketEPD_20251105_cp1251.xml'), join(h.config.inbox.path, 'PacketEPD_20251105_cp1251.xml'));
  const f = await waitFor(() => fileRow('PacketEPD_20251105_cp1251.xml'), 20_000, 'file row');
  t.is(f.status, 'ACCEPTED');
  t.is(f.payments_added, 7);
  const final = await waitFor(async () => {
    const ps = await payments(f.id);
    return ps.every((p) => ['ACCEPTED', 'REJECTED', 'SKIPPED'].includes(p.status)) ? ps : undefined;
  }, 30_000, 'final statuses');
  const by = Object.fromEntries(final.map((p) => [p.ref, p.status]));
  t.deepEqual(by, {
    'ED101/1002': 'ACCEPTED', 'ED101/1003': 'ACCEPTED', 'ED101/1004': 'ACCEPTED', 'ED101/1005': 'SKIPPED',
    'ED101/1006': 'SKIPPED', 'ED101/1007': 'ACCEPTED', 'ED101/1008': 'ACCEPTED',
  });
  for (const p of final.filter((x) => x.status === 'ACCEPTED')) {
    t.regex(p.order_id!, /^[0-9A-Za-z]{32}$/);
    t.regex(p.gis_id!, /^[0-9a-f-]{36}$/);
    t.is(h.sim.gis.accepted.get(p.order_id!)?.times, 1, 'ГИС saw the order-id exactly once');
  }
  // the file went to the archive
  t.true(existsSync(join(h.config.inbox.archive, 'PacketEPD_20251105_cp1251.xml')));

  // history of one payment: every transition is an event
  const accepted = final.find((p) => p.ref === 'ED101/1002')!;
  const events = await h.bus.store.query<{ status: string }>('SELECT status FROM payment_events WHERE payment_id = $1 ORDER BY id', [accepted.id]);
  t.deepEqual(events.map((e) => e.status), ['RECEIVED', 'REPORTABLE', 'PACKED', 'SENT', 'ACCEPTED']);
  const skipped = final.find((p) => p.ref === 'ED101/1005')!;
  const [sk] = await h.bus.store.query<{ reason: string }>('SELECT reason FROM payments WHERE id = $1', [skipped.id]);
  t.regex(sk.reason, /not in the payee registry/);
});

test.serial('every SMEV message is stored signed, both ways; the stored SendRequest is XSD-valid and its signature verifies', async (t) => {
  const rows = await h.bus.store.query<{ operation: string; request_xml: string; response_xml: string; status: string }>(
    `SELECT operation, request_xml, response_xml, status FROM smev_messages WHERE operation = 'SendRequest' ORDER BY id LIMIT 1`);
  t.is(rows.length, 1);
  const { request_xml: req, response_xml: res } = rows[0];
  t.is(rows[0].status, 'ok');
  const smevSet = await loadSchemaSet('smev-1.2');
  const v = await validate(req, smevSet);
  t.true(v.valid, JSON.stringify(v.errors));
  const provider = createProvider('js');
  const bankCert = loadCertificate(readFileSync(join(h.keys, 'bank.cert.pem')));
  t.true(verifyXml(req, { containerLocalName: 'CallerInformationSystemSignature', targetLocalName: 'SenderProvidedRequestData', trusted: [bankCert], provider }).ok);
  const smevCert = loadCertificate(readFileSync(join(h.keys, 'smev.cert.pem')));
  t.true(verifyXml(res, { containerLocalName: 'SMEVSignature', targetLocalName: 'MessageMetadata', trusted: [smevCert], provider }).ok);
  // the ГИС packet inside is valid against our own XSD
  const content = parseSmevRequest(req).content!;
  const g = await validate(content, await loadSchemaSet('gis-payments-1.0.0'));
  t.true(g.valid, JSON.stringify(g.errors));
  t.regex(content, /ImportNotificationsOfOrderExecutionRequest/);
  const inbound = await h.bus.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM smev_messages WHERE operation = 'GetResponse' AND response_xml LIKE '%SMEVSignature%'`);
  t.true(inbound[0].n >= 1);
});

test.serial('the same content under another name is a duplicate and adds no payment', async (t) => {
  copyFileSync(join(SAMPLES, 'ufebs/PacketEPD_20251105_cp1251.xml'), join(h.config.inbox.path, 'again.xml'));
  const f = await waitFor(() => fileRow('again.xml'), 20_000, 'duplicate row');
  t.is(f.status, 'DUPLICATE');
  t.is(f.payments_added, 0);
  t.regex(f.reason!, /DUPLICATE_FILE/);
});

test.serial('a broken file is quarantined with <name>.error.txt; nothing else stops', async (t) => {
  writeFileSync(join(h.config.inbox.path, 'broken.xml'), '<?xml version="1.0" encoding="UTF-8"?>\n<PacketEPD xmlns="urn:cbr-ru:ed:v2.0" EDNo="1">\n<ED101>');
  copyFileSync(join(SAMPLES, 'ufebs/ED101_20251106_utf8.xml'), join(h.config.inbox.path, 'ED101_20251106_utf8.xml'));
  const bad = await waitFor(() => fileRow('broken.xml'), 20_000, 'broken row');
  t.is(bad.status, 'REJECTED');
  t.regex(bad.reason!, /NOT_WELL_FORMED/);
  await waitFor(async () => existsSync(join(h.config.inbox.quarantine, 'broken.xml.error.txt')), 5000, 'error file');
  t.regex(readFileSync(join(h.config.inbox.quarantine, 'broken.xml.error.txt'), 'utf8'), /NOT_WELL_FORMED/);
  const good = await waitFor(() => fileRow('ED101_20251106_utf8.xml'), 20_000, 'good row');
  t.is(good.status, 'ACCEPTED');
  const ps = await waitFor(async () => {
    const r = await payments(good.id);
    return r.length && r.every((p) => p.status === 'ACCEPTED') ? r : undefined;
  }, 30_000, 'accepted');
  t.is(ps.length, 1);
  t.deepEqual(readdirSync(h.config.inbox.path), []);
});
