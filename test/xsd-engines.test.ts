/**
 * The two XSD engines (native libxmljs, wasm xmllint) are both libxml2: the same document gets the same
 * verdict from each, and the errors name the same element. The native engine compiles a schema set once.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { engine, loadSchemaSet, validate, type SchemaSetName } from '../connectors/xsd/validator.ts';
import { buildNotificationPacket, orderId, type NotificationItem } from '../transformers/gis/notification.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/smev-envelope/${name}`, import.meta.url), 'utf8');

function item(n: number): NotificationItem {
  return {
    transportId: `0b6c7d1e-1111-4a2b-9c3d-${String(n).padStart(12, '0')}`,
    orderId: orderId({ bic: '044525225', date: '2021-02-25', sourceKey: `ED101:${n}` }),
    orderDate: '2021-02-25',
    amountKop: 100_000 + n,
    purpose: 'Оплата ЖКУ <ООО "Рога & Копыта">',
    recipient: { inn: '7701234567', kpp: '770101001', name: 'ООО «УК»', bankName: 'Банк', bic: '044525225', account: '40702810938000000001', corrAccount: '30101810400000000225' },
  };
}

const packet = buildNotificationPacket({ informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', items: [item(1), item(2)] });

const cases: { name: string; set: SchemaSetName; xml: string }[] = [
  { name: 'GIS packet', set: 'gis-payments-1.0.0', xml: packet },
  { name: 'GIS packet, fractional amount', set: 'gis-payments-1.0.0', xml: packet.replace(/<ns2:amount>\d+</, '<ns2:amount>12.50<') },
  { name: 'GIS packet, unknown element', set: 'gis-payments-1.0.0', xml: packet.replace('<ns2:amount>', '<ns2:oops>1</ns2:oops><ns2:amount>') },
  { name: 'GIS packet, not well-formed', set: 'gis-payments-1.0.0', xml: packet.slice(0, -20) },
  { name: 'SMEV 1.2 fault', set: 'smev-1.2', xml: fixture('fault-signature-1.2.xml') },
  { name: 'SMEV 1.2 empty queue', set: 'smev-1.2', xml: fixture('empty-queue-1.2.xml') },
  // SMEV-made 1.2 metadata is not valid against the derived 1.2 schemas (schemas/README.md): both engines say so
  { name: 'SMEV 1.2 SendRequestResponse', set: 'smev-1.2', xml: fixture('send-request-response-1.2.xml') },
  { name: 'SMEV 1.2 empty queue with a stray child', set: 'smev-1.2', xml: fixture('empty-queue-1.2.xml').replace(' />', '><ns2:Stray/></ns2:GetResponseResponse>') },
  { name: 'root nobody declares', set: 'smev-1.1', xml: '<a xmlns="urn:nobody"/>' },
];

async function withEngine<T>(e: 'native' | 'wasm', fn: () => Promise<T>): Promise<T> {
  const before = process.env.GKH_XSD_ENGINE;
  process.env.GKH_XSD_ENGINE = e;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.GKH_XSD_ENGINE;
    else process.env.GKH_XSD_ENGINE = before;
  }
}

test.serial('the native engine is the default here (libxmljs built by npm ci)', (t) => {
  t.is(engine(), 'native');
});

test.serial('native and wasm give the same verdict and name the same elements', async (t) => {
  for (const c of cases) {
    const set = await loadSchemaSet(c.set);
    const n = await withEngine('native', () => validate(c.xml, set));
    const w = await withEngine('wasm', () => validate(c.xml, set));
    t.is(n.valid, w.valid, c.name);
    if (!n.valid) {
      t.true(n.errors.length > 0, c.name);
      const elems = (r: typeof n) => [...new Set(r.errors.flatMap((e) => [...e.message.matchAll(/Element '([^']+)'/g)].map((m) => m[1])))].sort();
      t.deepEqual(elems(n), elems(w), c.name);
    }
  }
  // the verdicts themselves, so that two engines agreeing on a wrong answer still fail
  const verdicts = await Promise.all(cases.map(async (c) => (await validate(c.xml, await loadSchemaSet(c.set))).valid));
  t.deepEqual(verdicts, [true, false, false, false, true, true, false, false, false]);
});

test.serial('native: an error carries its line; a malformed document says so', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const multi = packet.replace(/></g, '>\n<').replace(/<ns2:amount>\d+</, '<ns2:amount>12.50<');
  const line = multi.slice(0, multi.indexOf('12.50')).split('\n').length;
  const r = await withEngine('native', () => validate(multi, set));
  t.false(r.valid);
  t.is(r.errors[0]!.line, line);
  const m = await withEngine('native', () => validate('<a><b></a>', set));
  t.false(m.valid);
  t.regex(m.errors[0]!.message, /not well-formed/);
});

test.serial('native: no entity expansion, no DOCTYPE', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const r = await withEngine('native', () => validate('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', set));
  t.false(r.valid);
  t.regex(r.errors[0]!.message, /DOCTYPE/);
});

test.serial('native: a 500-item packet validates in well under 100 ms of CPU (the schema is compiled once)', async (t) => {
  const set = await loadSchemaSet('gis-payments-1.0.0');
  const big = buildNotificationPacket({ informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', items: Array.from({ length: 500 }, (_, i) => item(i + 1)) });
  await withEngine('native', () => validate(big, set));
  const c0 = process.cpuUsage();
  for (let i = 0; i < 5; i++) t.true((await withEngine('native', () => validate(big, set))).valid);
  const ms = (process.cpuUsage(c0).user + process.cpuUsage(c0).system) / 1000 / 5;
  t.log(`${ms.toFixed(1)} ms CPU per 500-item packet`);
  t.true(ms < 100, `${ms} ms`);
});

test.serial('GKH_XSD_ENGINE with a wrong value is refused with a message', (t) => {
  const before = process.env.GKH_XSD_ENGINE;
  process.env.GKH_XSD_ENGINE = 'fast';
  try {
    t.throws(() => engine(), { message: /GKH_XSD_ENGINE=fast: expected native or wasm/ });
  } finally {
    if (before === undefined) delete process.env.GKH_XSD_ENGINE;
    else process.env.GKH_XSD_ENGINE = before;
  }
});

// The native engine parsed each document through libxmljs's wrapper, from a JS string: the bytes and the tree were
// released only when V8 collected the wrapper, which a small JS heap rarely does — the bus grew by ≈ 0.7 MB per
// 500-item packet (≈ 900 MB of RSS at 500 000 payments in the benchmark). Now the document is freed at once.
test.serial('the native engine frees what it parses: 300 validations of a 500-item packet do not grow the process', async (t) => {
  if (engine() !== 'native') return t.pass('libxmljs not built here: the wasm engine has no such state');
  const big = buildNotificationPacket({
    informationSystemId: '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', organizationId: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    items: Array.from({ length: 500 }, (_, i) => item(i)),
  });
  const set = await loadSchemaSet('gis-payments-1.0.0');
  for (let i = 0; i < 20; i++) t.true((await validate(big, set)).valid);
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 300; i++) t.true((await validate(big, set)).valid);
  const grownMb = (process.memoryUsage().rss - before) / 1048576;
  t.log(`RSS grew ${grownMb.toFixed(0)} MB over 300 validations of ${(Buffer.byteLength(big) / 1024).toFixed(0)} KB`);
  t.true(grownMb < 80, `RSS grew ${grownMb.toFixed(0)} MB`);
});
