import test from 'ava';
import { readFileSync } from 'node:fs';
import { DOMParser } from '@xmldom/xmldom';
import {
  SMEV_TRANSFORM_URI,
  SmevTransformError,
  smevTransform,
  smevTransformXml,
} from '../transformers/smev/transform.ts';

const fx = (name: string): string => readFileSync(new URL(`./fixtures/smev/${name}`, import.meta.url), 'utf8');

test('SMEV_TRANSFORM_URI', (t) => {
  t.is(SMEV_TRANSFORM_URI, 'urn://smev-gov-ru/xmldsig/transform');
});

const vectors: [string, string][] = [
  ['A1', 'A.1 MR scenario 1 (rules 1, 2, 6)'],
  ['A2', 'A.2 MR scenario 2 (rules 4, 5)'],
  ['A3', 'A.3 MR scenario 3 (rules 3, 7, 8)'],
  ['A4', 'A.4 SenderProvidedRequestData 1.0'],
  ['B', 'B. BreachRequest (global prefix counter)'],
  ['C', 'C. PHP port test, corrected expectation'],
  ['F01', 'F.01 siblings re-declare a namespace'],
  ['F02', 'F.02 namespace declared at root, used deeper'],
  ['F03', 'F.03 unused / redundant declarations dropped'],
  ['F04', 'F.04 attribute namespaces in sorted order'],
  ['F05', 'F.05 whitespace-only text removed, other text verbatim'],
  ['F06', 'F.06 short text: > escaped only at 0 or after ]'],
  ['F07', 'F.07 long text: > escaped after an escaped char'],
  ['F08', 'F.08 > at start, ]]> protected'],
  ['F09', 'F.09 quotes not escaped in text'],
  ['F10', 'F.10 CR → &#xd;, LF/TAB raw'],
];

for (const [id, title] of vectors) {
  test(`vector ${title}`, (t) => {
    t.is(smevTransformXml(fx(`${id}.input.xml`)), fx(`${id}.expected.xml`));
  });
}

test('vector B: input contains TABs and double spaces as documented', (t) => {
  const input = fx('B.input.xml');
  t.true(input.includes('>\t<ns:MessageID>'));
  t.true(input.includes('"  xmlns:ns2='));
});

test('vector C: the PHP expectation is NOT what we produce (prefix leak bug)', (t) => {
  const out = smevTransformXml(fx('C.input.xml'));
  t.true(out.includes('<ns6:elementFour xmlns:ns6="http://test/2">0</ns6:elementFour>'));
  t.false(out.includes('<ns2:elementFour>'));
});

test('vector D: real SMEV Response element (selected by Id)', (t) => {
  t.is(smevTransformXml(fx('D.response.xml'), 'SIGNED_BY_SMEV'), fx('D.expected.xml'));
});

test('vector G: SenderProvidedRequestData inside the signed envelope', (t) => {
  t.is(smevTransformXml(fx('G.envelope.xml'), 'SIGNED_BY_CONSUMER'), fx('G.expected.xml'));
});

test('smevTransform works on an xmldom Element', (t) => {
  const doc = new DOMParser().parseFromString(fx('F04.input.xml'), 'text/xml');
  t.is(smevTransform(doc.documentElement as unknown as Element), fx('F04.expected.xml'));
});

// ---------------------------------------------------------------- escaping details (§8.4)

test('text: CDATA becomes escaped text; comments merge text; PIs split blocks', (t) => {
  t.is(smevTransformXml('<a xmlns="urn:a"><![CDATA[<x>&]]></a>'), '<ns1:a xmlns:ns1="urn:a">&lt;x>&amp;</ns1:a>');
  // comment skipped without flushing: "  " + "x" merge into one (non-blank) block
  t.is(smevTransformXml('<a xmlns="urn:a">  <!--c-->x</a>'), '<ns1:a xmlns:ns1="urn:a">  x</ns1:a>');
  // PI splits: "  " is its own (blank, dropped) block
  t.is(smevTransformXml('<a xmlns="urn:a">  <?p d?>x</a>'), '<ns1:a xmlns:ns1="urn:a">x</ns1:a>');
  // PI split changes the short/long decision: ">" at start of the second block is escaped
  t.is(smevTransformXml('<a xmlns="urn:a">abc<?p?>&gt;d</a>'), '<ns1:a xmlns:ns1="urn:a">abc&gt;d</ns1:a>');
});

test('text: 512-unit chunks escape a leading > of each chunk', (t) => {
  const text = `${'a'.repeat(512)}>b`;
  t.is(smevTransformXml(`<a xmlns="urn:a">${text.replace('>', '&gt;')}</a>`), `<ns1:a xmlns:ns1="urn:a">${'a'.repeat(512)}&gt;b</ns1:a>`);
  const text2 = `${'a'.repeat(511)}>b`;
  t.is(smevTransformXml(`<a xmlns="urn:a">${text2.replace('>', '&gt;')}</a>`), `<ns1:a xmlns:ns1="urn:a">${'a'.repeat(511)}>b</ns1:a>`);
});

test('text: C1 controls and U+FFFE/FFFF as char refs; non-BMP raw', (t) => {
  t.is(smevTransformXml('<a xmlns="urn:a">x&#x85;y&#x7f;&#x1F600;</a>'), '<ns1:a xmlns:ns1="urn:a">x&#x85;y&#x7f;\u{1F600}</ns1:a>');
});

test('attributes: & < " TAB LF CR escaped, > and \' raw', (t) => {
  t.is(
    smevTransformXml('<a xmlns="urn:a" v="&amp;&lt;&quot;&gt;\'&#9;&#10;&#13;"/>'),
    '<ns1:a xmlns:ns1="urn:a" v="&amp;&lt;&quot;>\'&#x9;&#xa;&#xd;"></ns1:a>',
  );
});

test('CRLF in source text is normalised to LF by the parser', (t) => {
  t.is(smevTransformXml('<a xmlns="urn:a">x\r\ny</a>'), '<ns1:a xmlns:ns1="urn:a">x\ny</ns1:a>');
});

// ---------------------------------------------------------------- unsupported input

test('element in no namespace is rejected, naming the element', (t) => {
  const e = t.throws(() => smevTransformXml('<a xmlns="urn:a"><b xmlns="">x</b></a>'), { instanceOf: SmevTransformError });
  t.regex(e!.message, /<b>/);
  t.regex(e!.message, /no namespace/);
});

test('root element in no namespace is rejected', (t) => {
  t.throws(() => smevTransformXml('<root/>'), { instanceOf: SmevTransformError, message: /<root>/ });
});

test('xml:* attribute is rejected, naming the element', (t) => {
  const e = t.throws(() => smevTransformXml('<p:a xmlns:p="urn:a" xml:lang="ru">x</p:a>'), { instanceOf: SmevTransformError });
  t.regex(e!.message, /xml:lang/);
  t.regex(e!.message, /<p:a>/);
});

test('DOCTYPE is rejected (no DTD / entity expansion)', (t) => {
  t.throws(() => smevTransformXml('<!DOCTYPE a [<!ENTITY e "zz">]><a xmlns="urn:a">&e;</a>'), {
    instanceOf: SmevTransformError,
    message: /DOCTYPE/,
  });
  t.throws(() => smevTransformXml('<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE a><a xmlns="urn:a"/>'), { message: /DOCTYPE/ });
});

test('unknown entity / malformed XML is rejected', (t) => {
  t.throws(() => smevTransformXml('<a xmlns="urn:a">&e;</a>'), { instanceOf: SmevTransformError });
  t.throws(() => smevTransformXml('<a xmlns="urn:a">'), { instanceOf: SmevTransformError });
});

test('missing / duplicate Id', (t) => {
  t.throws(() => smevTransformXml('<a xmlns="urn:a" Id="x"/>', 'y'), { message: /no element with Id="y"/ });
  t.throws(() => smevTransformXml('<a xmlns="urn:a"><b Id="x"/><c Id="x"/></a>', 'x'), { message: /several/ });
});

test('mismatched tags and trailing text are rejected', (t) => {
  t.throws(() => smevTransformXml('<a xmlns="urn:a"><b></a>'), { instanceOf: SmevTransformError });
  t.throws(() => smevTransformXml('<a xmlns="urn:a"></a>junk'), { instanceOf: SmevTransformError });
  t.throws(() => smevTransformXml('<a xmlns="urn:a"></b>'), { instanceOf: SmevTransformError });
});
