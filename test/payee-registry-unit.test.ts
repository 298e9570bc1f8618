import test from 'ava';
import { loadSchemaSet, validate } from '../connectors/xsd/validator.ts';
import { buildRegistryRequest, buildRegistryResponse, flattenRegistry, parseRegistryRequest, parseRegistryResponse, type RegistryPage } from '../transformers/gis/registry.ts';
import { payeeRecordProblems, formatPayeesCsv, parsePayeesCsv } from '../transformers/classify/payees.ts';
import { SimRegistry } from '../simulator/registry.ts';
import { CronError, cronMatches, nextRun, parseCron } from '../transformers/cron.ts';

const ID = '6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

test('registry request and response: built, valid against the provisional XSD, parsed back', async (t) => {
  const set = await loadSchemaSet('gis-payee-registry-1.0.0');
  const req = buildRegistryRequest({ informationSystemId: ID, organizationId: ID, pageSize: 100, pageKey: 'k:1' });
  t.true((await validate(req, set)).valid);
  t.deepEqual(parseRegistryRequest(req), { informationSystemId: ID, organizationId: ID, pageSize: 100, pageKey: 'k:1' });
  const reg = new SimRegistry({ organizations: 30, seed: 1 });
  const res = reg.answer(20, undefined, () => ID);
  const xml = buildRegistryResponse(res);
  const v = await validate(xml, set);
  t.true(v.valid, JSON.stringify(v.errors));
  const back = parseRegistryResponse(xml) as { page: RegistryPage };
  t.deepEqual(back, res as { page: RegistryPage });
  t.is(back.page.organizations.length, 20);
  t.regex(back.page.nextPageKey!, /^6f1e2d3c-.*:20:2$/);
  const last = reg.answer(20, back.page.nextPageKey, () => ID) as { page: RegistryPage };
  t.is(last.page.organizations.length, 10);
  t.is(last.page.nextPageKey, undefined);
  t.is(last.page.pageNumber, 2);
  // an error answer, and an invalid one
  const err = buildRegistryResponse({ error: { code: 'EXP001000', description: 'повторите' } });
  t.true((await validate(err, set)).valid);
  t.deepEqual(parseRegistryResponse(err), { error: { code: 'EXP001000', description: 'повторите' } });
  const bad = xml.replace(/<bank-bik>(\d{9})<\/bank-bik>/, '<bank-bik>$1</bank-bik><bank-bik>1</bank-bik>');
  const bv = await validate(bad, set);
  t.false(bv.valid);
  t.true(bv.errors.some((e) => /bank-bik/.test(e.message)));
  t.throws(() => parseRegistryResponse('<x xmlns="urn:other"/>'), { message: /response root is \{urn:other\}x/ });
});

test('flattening keeps strings (leading zeros), prefers the requisites\' recipient, rejects records with bad check digits', (t) => {
  const org = {
    ogrn: '1029921332275', inn: '9909630905', kpp: '990901001', name: 'ООО "УК"',
    requisites: [
      { guid: ID, updatedAt: '2025-09-15T10:21:07+03:00', bic: '044599202', account: '40702810502000012345', corrAccount: '30101810945990000202', bankName: 'Банк', capitalRepair: false },
      { guid: ID, updatedAt: '2025-09-15T10:21:07+03:00', bic: '044599202', account: '40702810502000012346', bankName: 'Банк', capitalRepair: true, recipientInn: '9909471998', recipientName: 'Фонд' },
      { guid: ID, updatedAt: '2025-09-15T10:21:07+03:00', bic: '044599202', account: '40603810100000000201', bankName: 'Банк', capitalRepair: true, recipientInn: '9909471998', recipientName: 'Фонд', kbk: '18210102010011000110', oktmo: '45000000' },
    ],
  };
  const { records, rejected } = flattenRegistry([org], 'page 1');
  t.is(records.length, 2);
  t.is(records[0]!.bic, '044599202');
  t.is(records[1]!.inn, '9909471998');
  t.is(records[1]!.name, 'Фонд');
  t.is(records[1]!.kbk, '18210102010011000110');
  t.is(rejected.length, 1);
  t.is(rejected[0]!.location, 'page 1 organization[1]/payment-information[2]');
  t.regex(rejected[0]!.message, /control key/);
});

test('the simulated registry: 20 000 organisations fast, deterministic, every record valid, changes between exports', (t) => {
  const started = Date.now();
  const a = new SimRegistry({ seed: 42 });
  const first = a.answer(100_000, undefined, () => ID) as { page: RegistryPage };
  const ms = Date.now() - started;
  t.log(`20 000 organisations generated in ${ms} ms; ${first.page.totalRequisites} requisites`);
  t.true(ms < 30_000, `${ms} ms`); // ≈2 s alone; generous for a loaded shared machine
  t.is(first.page.totalOrganizations, 20_000);
  t.true(first.page.totalRequisites > 20_000);
  const flat = flattenRegistry(first.page.organizations);
  t.deepEqual(flat.rejected, []);
  t.is(payeeRecordProblems(flat.records[0]!).length, 0);
  const b = new SimRegistry({ seed: 42, organizations: 10 }); // the same seed: the same first organisations
  t.deepEqual((b.answer(10, undefined, () => ID) as { page: RegistryPage }).page.organizations, first.page.organizations.slice(0, 10));
  // a second export: some requisites added, changed, removed
  const small = new SimRegistry({ seed: 3, organizations: 1000 });
  const keysOf = (orgs: RegistryPage['organizations']) => new Map(orgs.flatMap((o) => o.requisites.map((q) => [`${q.bic}/${q.account}`, JSON.stringify(q)] as const)));
  const e1 = keysOf((small.answer(5000, undefined, () => ID) as { page: RegistryPage }).page.organizations);
  const e2 = keysOf((small.answer(5000, undefined, () => ID) as { page: RegistryPage }).page.organizations);
  const added = [...e2.keys()].filter((k) => !e1.has(k)).length;
  const removed = [...e1.keys()].filter((k) => !e2.has(k)).length;
  const changed = [...e2.keys()].filter((k) => e1.has(k) && e1.get(k) !== e2.get(k)).length;
  t.true(added > 0 && removed > 0 && changed > 0, `${added}/${changed}/${removed}`);
  // an unknown page key is a ГИС error, not a crash
  t.like(small.answer(10, '00000000-0000-4000-8000-000000000000:10:2', () => ID), { error: { code: 'INT002013' } });
});

test('payees CSV export: round trip through the loader, quotes doubled, leading zeros kept', (t) => {
  const reg = new SimRegistry({ organizations: 50, seed: 9 });
  const recs = flattenRegistry((reg.answer(100, undefined, () => ID) as { page: RegistryPage }).page.organizations).records;
  const csv = formatPayeesCsv(recs);
  t.true(csv.startsWith('ОГРН;ИНН;КПП;Наименование;БИК;Расчетный счет;Корр. счет;Банк;Капремонт;GUID;Дата изменения;КБК;ОКТМО\r\n'));
  t.true(csv.includes('""'));
  const back = parsePayeesCsv(Buffer.from(csv), 'x.csv');
  t.deepEqual(back.rejected, []);
  t.deepEqual(back.records, recs);
});

test('cron: fields, ranges, steps, lists, names, macros; day-of-month OR day-of-week; errors name the field', (t) => {
  const at = (s: string) => new Date(s);
  t.true(cronMatches(parseCron('0 3 * * *'), at('2026-12-04T03:00:00Z'), true));
  t.false(cronMatches(parseCron('0 3 * * *'), at('2026-12-04T03:01:00Z'), true));
  t.true(cronMatches(parseCron('*/15 * * * *'), at('2026-12-04T10:45:00Z'), true));
  t.false(cronMatches(parseCron('*/15 * * * *'), at('2026-12-04T10:46:00Z'), true));
  t.true(cronMatches(parseCron('30 1-5/2 * * *'), at('2026-12-04T03:30:00Z'), true));
  t.false(cronMatches(parseCron('30 1-5/2 * * *'), at('2026-12-04T04:30:00Z'), true));
  t.true(cronMatches(parseCron('0 0 * * mon-fri'), at('2026-12-04T00:00:00Z'), true)); // a Friday
  t.false(cronMatches(parseCron('0 0 * * sat,sun'), at('2026-12-04T00:00:00Z'), true));
  t.true(cronMatches(parseCron('0 0 * * 7'), at('2026-12-06T00:00:00Z'), true)); // Sunday as 7
  t.true(cronMatches(parseCron('0 0 1 jan *'), at('2027-01-01T00:00:00Z'), true));
  // both day fields restricted: either matches (crontab)
  t.true(cronMatches(parseCron('0 0 13 * 5'), at('2026-12-04T00:00:00Z'), true));
  t.true(cronMatches(parseCron('0 0 13 * 5'), at('2026-12-13T00:00:00Z'), true));
  t.false(cronMatches(parseCron('0 0 13 * 5'), at('2026-12-05T00:00:00Z'), true));
  t.deepEqual(nextRun(parseCron('@daily'), at('2026-12-04T03:25:10Z'), true), at('2026-12-05T00:00:00Z'));
  t.deepEqual(nextRun(parseCron('0 3 * * *'), at('2026-12-04T02:59:59Z'), true), at('2026-12-04T03:00:00Z'));
  t.deepEqual(nextRun(parseCron('0 0 29 2 *'), at('2026-12-04T00:00:00Z'), true), at('2028-02-29T00:00:00Z'));
  t.throws(() => parseCron('0 3 * *'), { instanceOf: CronError, message: /5 fields/ });
  t.throws(() => parseCron('60 3 * * *'), { message: /minute 60 is outside 0-59/ });
  t.throws(() => parseCron('0 3 * * 8'), { message: /day-of-week 8/ });
  t.throws(() => parseCron('0 5-3 * * *'), { message: /hour range 5-3 goes backwards/ });
  t.throws(() => parseCron('0 x * * *'), { message: /hour "x" is not a number/ });
  t.throws(() => parseCron('*/0 * * * *'), { message: /step must be at least 1/ });
});
