/**
 * Selection table: purposes as banks really see them, each with the expected decision, rules, identifiers and
 * reason, against the sample registry (examples/payees.csv). Pure: classify() on canonical payments.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { classify, type ClassifyConfig } from '../transformers/classify/classify.ts';
import { PayeeIndex, parsePayeesCsv } from '../transformers/classify/payees.ts';
import { DEFAULT_IDENTIFIER_CONFIG } from '../transformers/classify/identifiers.ts';
import type { Party, Payment } from '../transformers/payment.ts';

const index = new PayeeIndex(parsePayeesCsv(readFileSync(new URL('../examples/payees.csv', import.meta.url)), 'payees.csv').records);

const P: Record<string, Party> = {
  UK: { bic: '044599202', account: '40702810502000012345', inn: '9909630905', kpp: '990901001', name: 'ООО УК Жилсервис' },
  FKR: { bic: '044599202', account: '40603810100000000201', inn: '9909471998', kpp: '990901001', name: 'Фонд капремонта' },
  TEPLO: { bic: '044599303', account: '40702810900030001122', inn: '9909014543', name: 'Теплосеть' },
  VODA2: { bic: '044599303', account: '40702810100030009911', inn: '9909488039', name: 'Водоканал' },
  NR: { bic: '044599202', account: '40702810002000066066', inn: '7707083893', kpp: '773601001', name: 'ООО Ромашка' },
  // not in the registry by account, but the INN (and KPP) of a registry payee (Водоканал)
  NR_VODA: { bic: '044599202', account: '40702810002000066066', inn: '9909488039', kpp: '990901001', name: 'МУП Водоканал' },
  NR_VODA_NOKPP: { bic: '044599202', account: '40702810002000066066', inn: '9909488039', name: 'МУП Водоканал' },
  NR_VODA_OTHERKPP: { bic: '044599202', account: '40702810002000066066', inn: '9909488039', kpp: '770101001', name: 'МУП Водоканал' },
};

type Ids = { pd?: string; sid?: string; els?: string; acc?: string; period?: string };
interface Case {
  payee: keyof typeof P;
  purpose: string;
  f22?: string;
  cfg?: Partial<ClassifyConfig> & { mapLatin?: boolean };
  decision: 'R' | 'S';
  rules: string[];
  ids?: Ids;
  reason: RegExp;
  warnings?: string[];
}

const NO_ID = /no ЖКУ identifier was found/;
const REG = /is in the payee registry/;
const NOTREG = /is not in the payee registry/;

const CASES: Case[] = [
  // marker formats and separators
  { payee: 'UK', purpose: 'Оплата ЖКУ за 10.2025 ///ЖКУ 90АБ123456-01-1025', decision: 'R', rules: ['registry-match', 'identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025', period: '2025-10' }, reason: /registry.*; ИПД 90АБ123456-01-1025 in the purpose/ },
  { payee: 'NR', purpose: 'ИПД 90АБ123456-01-1025 оплата за октябрь 2025', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025', period: '2025-10' }, reason: /not in the payee registry; ИПД 90АБ123456-01-1025 in the purpose/ },
  { payee: 'NR', purpose: 'ИПД90АБ123456-01-1025', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025' }, reason: /ИПД 90АБ123456-01-1025/ },
  { payee: 'NR', purpose: 'ипд 90аб123456-01-1025', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025' }, reason: /ИПД 90АБ123456-01-1025/ },
  { payee: 'NR', purpose: 'ЕЛС 90ЖК246810 за 11.2025', decision: 'R', rules: ['identifier:els'], ids: { els: '90ЖК246810', period: '2025-11' }, reason: /ЕЛС 90ЖК246810 in the purpose/ },
  { payee: 'NR', purpose: 'ЕЛС90ЖК246810', decision: 'R', rules: ['identifier:els'], ids: { els: '90ЖК246810' }, reason: /ЕЛС 90ЖК246810/ },
  // a hyphen after the marker once gave a false ID_MARKER_WITHOUT_TOKEN warning (bug found by this table)
  { payee: 'NR', purpose: 'ЕЛС-90АБ123456 ХВС', decision: 'R', rules: ['identifier:els'], ids: { els: '90АБ123456' }, reason: /ЕЛС 90АБ123456/ },
  { payee: 'NR', purpose: 'Е Л С 90АБ123456', decision: 'R', rules: ['identifier:els'], ids: { els: '90АБ123456' }, reason: /ЕЛС 90АБ123456/ },
  { payee: 'NR', purpose: 'Оплата 90АБ123456-01-1025', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025' }, reason: /ИПД/ },
  { payee: 'NR', purpose: '///ИПД;90АБ123456-01-1025;10.2025;', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025', period: '2025-10' }, reason: /ИПД 90АБ123456-01-1025/ },
  { payee: 'NR', purpose: 'ЖКУ ИПД:90АБ123456-01-1025 сумма 1500.00', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025' }, reason: /ИПД/ },
  { payee: 'NR', purpose: 'ИЖКУ 90АБ123456-01 вода', decision: 'R', rules: ['identifier:serviceId'], ids: { sid: '90АБ123456-01' }, reason: /ИЖКУ 90АБ123456-01 in the purpose/ },
  { payee: 'NR', purpose: 'ИЖКУ 90КР000777-02-', decision: 'R', rules: ['identifier:serviceId'], ids: { sid: '90КР000777-02' }, reason: /ИЖКУ 90КР000777-02/ },
  { payee: 'NR', purpose: 'ЕЛС 90ЁЖ123456', decision: 'R', rules: ['identifier:els'], ids: { els: '90ЁЖ123456' }, reason: /ЕЛС 90ЁЖ123456/ },
  { payee: 'NR', purpose: 'ЕЛС 90ЖЖ123456ХВС', decision: 'R', rules: ['identifier:els'], ids: { els: '90ЖЖ123456' }, reason: /ЕЛС 90ЖЖ123456/ },
  { payee: 'NR', purpose: 'ЕЛС 90аб123456', decision: 'R', rules: ['identifier:els'], ids: { els: '90АБ123456' }, reason: /ЕЛС 90АБ123456/ },
  // several identifiers
  { payee: 'NR', purpose: 'ИПД 90АБ123456-01-1025 ЕЛС 91ВГ000001', decision: 'R', rules: ['identifier:paymentDocumentId', 'identifier:els'], ids: { pd: '90АБ123456-01-1025', els: '91ВГ000001' }, reason: /ИПД 90АБ123456-01-1025 in the purpose, ЕЛС 91ВГ000001/, warnings: ['ID_PREFIX_MISMATCH'] },
  { payee: 'NR', purpose: 'ИПД 90АБ123456-01-1025, ИЖКУ 90АБ123456-01, ЕЛС 90АБ123456', decision: 'R', rules: ['identifier:paymentDocumentId', 'identifier:serviceId', 'identifier:els'], ids: { pd: '90АБ123456-01-1025', sid: '90АБ123456-01', els: '90АБ123456' }, reason: /ИПД .*ИЖКУ .*ЕЛС / },
  { payee: 'NR', purpose: 'ЕЛС 90АБ123456, ЕЛС 90АБ654321', decision: 'R', rules: ['identifier:els'], ids: { els: '90АБ123456' }, reason: /ЕЛС 90АБ123456/ },
  { payee: 'UK', purpose: 'за 09.2025 ИПД 90АБ123456-01-1025', decision: 'R', rules: ['registry-match', 'identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025', period: '2025-09' }, reason: REG },
  // wrong lengths and shapes
  { payee: 'NR', purpose: 'ЕЛС 90ЖК24681', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: 'ЕЛС 90ЖК2468101', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: 'ИЖКУ 90АБ123456-1', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: 'ИПД 90АБ123456-01-10251', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: '190АБ1234567 оплата', decision: 'S', rules: ['none'], reason: NO_ID },
  { payee: 'NR', purpose: 'ИПД 9OАБ123456-01-1025', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: 'ЕЛС 90 АБ 123456', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  { payee: 'NR', purpose: 'Оплата ЖКУ по квитанции №1234567890', decision: 'S', rules: ['none'], reason: NO_ID },
  { payee: 'NR', purpose: '///ЖКУ', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  // Latin look-alikes in the letter pair
  { payee: 'NR', purpose: 'ЕЛС 90ЖK246810', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['LATIN_LOOKALIKE'] },
  { payee: 'NR', purpose: 'ЕЛС 90ЖK246810', cfg: { mapLatin: true }, decision: 'R', rules: ['identifier:els'], ids: { els: '90ЖК246810' }, reason: /ЕЛС 90ЖК246810/, warnings: ['LATIN_LOOKALIKE'] },
  { payee: 'NR', purpose: 'ИПД 90AB123456-01-1025', decision: 'S', rules: ['none'], reason: NO_ID, warnings: ['LATIN_LOOKALIKE'] },
  { payee: 'NR', purpose: 'ИПД 90AB123456-01-1025', cfg: { mapLatin: true }, decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АВ123456-01-1025' }, reason: /ИПД 90АВ123456-01-1025/, warnings: ['LATIN_LOOKALIKE'] },
  { payee: 'NR', purpose: 'ЖКУ', f22: '90AB123456', cfg: { mapLatin: true }, decision: 'R', rules: ['identifier:els'], ids: { els: '90АВ123456' }, reason: /ЕЛС 90АВ123456 in field 22/, warnings: ['LATIN_LOOKALIKE'] },
  { payee: 'UK', purpose: 'ЕЛС 9OAB123456', decision: 'R', rules: ['registry-match'], reason: REG, warnings: ['ID_MARKER_WITHOUT_TOKEN'] },
  // field 22
  { payee: 'NR', purpose: 'Оплата услуг', f22: '90АБ123456-01-1025', decision: 'R', rules: ['identifier:paymentDocumentId'], ids: { pd: '90АБ123456-01-1025' }, reason: /in field 22/ },
  { payee: 'UK', purpose: 'ЖКУ', f22: '90АБ123456', decision: 'R', rules: ['registry-match', 'identifier:els'], ids: { els: '90АБ123456' }, reason: /ЕЛС 90АБ123456 in field 22/ },
  { payee: 'NR', purpose: 'Оплата по счету 15', f22: '0', decision: 'S', rules: ['none'], reason: NO_ID },
  { payee: 'NR', purpose: 'Налог на имущество организаций', f22: '18210601010031000110', decision: 'S', rules: ['none'], reason: NO_ID },
  { payee: 'NR', purpose: 'Оплата', f22: 'ИПД 90АБ123456-01-1025', decision: 'S', rules: ['none'], reason: NO_ID },
  // лицевой счёт and period alone never count
  { payee: 'NR', purpose: 'л/с 0031207 за октябрь 2025', decision: 'S', rules: ['none'], ids: { acc: '0031207', period: '2025-10' }, reason: /лицевой счёт 0031207 alone does not count/ },
  { payee: 'NR', purpose: 'ЛС №77001; кв.5', decision: 'S', rules: ['none'], ids: { acc: '77001' }, reason: /лицевой счёт 77001 alone/ },
  { payee: 'NR', purpose: 'Лицевой счет: 12-34/5, кв. 1', decision: 'S', rules: ['none'], ids: { acc: '12-34/5' }, reason: /12-34\/5/ },
  { payee: 'NR', purpose: 'Квартплата кв.15 ул.Ленина 5', decision: 'S', rules: ['none'], reason: NO_ID },
  { payee: 'NR', purpose: 'Зарплата за октябрь 2025', decision: 'S', rules: ['none'], ids: { period: '2025-10' }, reason: NO_ID },
  // periods
  { payee: 'NR', purpose: 'за 102025 ЕЛС 90ВД000123', decision: 'R', rules: ['identifier:els'], ids: { els: '90ВД000123', period: '2025-10' }, reason: /ЕЛС 90ВД000123/ },
  { payee: 'NR', purpose: 'ЕЛС 90ВД000123 период:112025', decision: 'R', rules: ['identifier:els'], ids: { els: '90ВД000123', period: '2025-11' }, reason: /ЕЛС/ },
  { payee: 'NR', purpose: 'ЕЛС 90ВД000123 123456', decision: 'R', rules: ['identifier:els'], ids: { els: '90ВД000123' }, reason: /ЕЛС/ },
  { payee: 'NR', purpose: 'ЕЛС 90ВД000123 МАЙ 2024', decision: 'R', rules: ['identifier:els'], ids: { els: '90ВД000123', period: '2024-05' }, reason: /ЕЛС/ },
  { payee: 'NR', purpose: 'ЕЛС 90ВД000123 за декабрь 2024 г.', decision: 'R', rules: ['identifier:els'], ids: { els: '90ВД000123', period: '2024-12' }, reason: /ЕЛС/ },
  { payee: 'NR', purpose: 'Оплата по договору 102025 от 01.10.2025', decision: 'S', rules: ['none'], reason: NO_ID },
  // registry payees, housing or not
  { payee: 'UK', purpose: 'Оплата по счету 341 от 01.11.2025 за ремонт оборудования', f22: '0', decision: 'R', rules: ['registry-match'], reason: /044599202\/40702810502000012345 is in the payee registry \(guid 095ac6bd/ },
  { payee: 'FKR', purpose: 'Взнос на капремонт л/с 12345 за 10.2025', decision: 'R', rules: ['registry-match'], ids: { acc: '12345', period: '2025-10' }, reason: /capital repair/ },
  { payee: 'FKR', purpose: 'Капремонт ИЖКУ 90КР000777-02 за 3 кв 2025', decision: 'R', rules: ['registry-match', 'identifier:serviceId'], ids: { sid: '90КР000777-02' }, reason: /capital repair.*ИЖКУ 90КР000777-02/ },
  { payee: 'TEPLO', purpose: 'Отопление л/сч. 100216 за 10.2025', decision: 'R', rules: ['registry-match'], ids: { acc: '100216', period: '2025-10' }, reason: REG },
  { payee: 'VODA2', purpose: 'Водоснабжение', decision: 'R', rules: ['registry-match'], reason: /34323635-0219/ },
  { payee: 'UK', purpose: 'Возврат займа по договору 7', decision: 'R', rules: ['registry-match'], reason: REG },
  // INN fallback (off by default)
  { payee: 'NR_VODA', purpose: 'Оплата за воду', decision: 'S', rules: ['none'], reason: NOTREG },
  { payee: 'NR_VODA', purpose: 'Оплата за воду', cfg: { innFallback: true }, decision: 'R', rules: ['registry-inn'], reason: /INN 9909488039\/990901001 is \(fallback/ },
  { payee: 'NR_VODA_NOKPP', purpose: 'Оплата за воду', cfg: { innFallback: true }, decision: 'R', rules: ['registry-inn'], reason: /INN 9909488039 is \(fallback/ },
  { payee: 'NR_VODA_OTHERKPP', purpose: 'Оплата за воду', cfg: { innFallback: true }, decision: 'S', rules: ['none'], reason: NOTREG },
  { payee: 'NR', purpose: 'Оплата за воду', cfg: { innFallback: true }, decision: 'S', rules: ['none'], reason: NOTREG },
  // modes
  { payee: 'NR', purpose: 'ИПД 90АБ123456-01-1025', cfg: { mode: 'R' }, decision: 'S', rules: ['none'], ids: { pd: '90АБ123456-01-1025' }, reason: /^not reportable: payee 044599202\/40702810002000066066 is not in the payee registry$/ },
  { payee: 'UK', purpose: 'Оплата по счету 15', cfg: { mode: 'I' }, decision: 'S', rules: ['none'], reason: /^not reportable: no ЖКУ identifier was found$/ },
  { payee: 'UK', purpose: 'ЕЛС 90АБ123456', cfg: { mode: 'I' }, decision: 'R', rules: ['identifier:els'], ids: { els: '90АБ123456' }, reason: /^ЕЛС 90АБ123456 in the purpose$/ },
  { payee: 'UK', purpose: 'ЕЛС 90АБ123456', cfg: { mode: 'R' }, decision: 'R', rules: ['registry-match'], ids: { els: '90АБ123456' }, reason: /^payee .* is in the payee registry \(guid [0-9a-f-]+\)$/ },
];

function payment(c: Case, i: number): Payment {
  return {
    sourceKey: `t/${i}`, ref: `case ${i}`, location: `case ${i}`, kind: 'ED101', amountKop: 150000, date: '2025-11-06', purpose: c.purpose,
    ...(c.f22 !== undefined ? { paymentId: c.f22 } : {}), payer: { name: 'Иванов И.И.' }, payee: P[c.payee]!, hints: {},
  };
}

test('the table has at least 60 cases', (t) => {
  t.true(CASES.length >= 60, `${CASES.length} cases`);
});

CASES.forEach((c, i) => {
  test(`#${i + 1} ${c.payee}: ${c.f22 !== undefined ? `[22=${c.f22}] ` : ''}${c.purpose}${c.cfg ? ` ${JSON.stringify(c.cfg)}` : ''}`, (t) => {
    const { mapLatin, ...rest } = c.cfg ?? {};
    const r = classify(payment(c, i), index, { identifiers: { ...DEFAULT_IDENTIFIER_CONFIG, mapLatinLookalikes: !!mapLatin }, ...rest });
    t.is(r.decision, c.decision === 'R' ? 'REPORTABLE' : 'SKIPPED');
    t.is(r.form, c.decision === 'R' ? 'full' : null);
    t.deepEqual(r.rules, c.rules);
    const ids = c.ids ?? {};
    t.deepEqual(
      { pd: r.paymentDocumentId, sid: r.serviceId, els: r.els, acc: r.accountNumber, period: r.period && `${r.period.year}-${String(r.period.month).padStart(2, '0')}` },
      { pd: ids.pd, sid: ids.sid, els: ids.els, acc: ids.acc, period: ids.period });
    t.regex(r.reason, c.reason);
    t.deepEqual([...new Set(r.warnings.map((w) => w.code))].sort(), [...(c.warnings ?? [])].sort());
  });
});

test('short п.139 form only when a charges lookup gave the ГИС GUIDs; otherwise full', (t) => {
  const base: Case = { payee: 'NR', purpose: 'ИПД 90АБ123456-01-1025', decision: 'R', rules: [], reason: /./ };
  const guid = '3f2c1a9e-5b7d-4c8e-9a1b-2d3e4f5a6b7c';
  const withGuid = classify(payment(base, 900), index, { lookup: (ids) => (ids.paymentDocumentId === '90АБ123456-01-1025' ? { paymentDocumentGuid: guid } : undefined) });
  t.is(withGuid.form, 'short');
  t.deepEqual(withGuid.guids, { paymentDocumentGuid: guid });
  const noGuid = classify(payment(base, 901), index, { lookup: () => undefined });
  t.is(noGuid.form, 'full');
  t.is(noGuid.guids, undefined);
  // a GUID for another identifier type than the one found does not make the short form
  const other = classify(payment(base, 902), index, { lookup: () => ({ serviceIdGuid: guid }) });
  t.is(other.form, 'full');
  const skipped = classify(payment({ ...base, purpose: 'Оплата' }, 903), index, { lookup: () => ({ paymentDocumentGuid: guid }) });
  t.is(skipped.form, null);
});
