import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateTestKeyPair } from '../connectors/smev3/crypto/index.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SMEV = join(ROOT, 'test/fixtures/smev');
const TOOLS = join(ROOT, 'test/fixtures/smev-tools');
const fx = (name: string): Buffer => readFileSync(join(SMEV, name));
/** time at which the real SMEV certificate of vector D was valid (the message was signed then) */
const D_AT = '2026-04-16T06:01:35Z';

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

// at most a few CLI processes at a time (each one boots node + tsx), so results keep arriving steadily
let running = 0;
const waiting: (() => void)[] = [];
async function cli(...args: string[]): Promise<Run> {
  if (running >= 4) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await spawnCli(args);
  } finally {
    running--;
    waiting.shift()?.();
  }
}

function spawnCli(args: string[]): Promise<Run> {
  return new Promise((res) => {
    execFile('node', ['bin/gkh-bus.js', 'smev', ...args], { cwd: ROOT, encoding: 'buffer', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      res({ code, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'gkh-smev-tools-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

const pair = generateTestKeyPair({ commonName: 'smev-tools test', org: 'Test Bank', days: 30 });
const KEY = join(tmp, 'bank.key.pem');
const CERT = join(tmp, 'bank.cert.pem');
writeFileSync(KEY, pair.keyPem);
writeFileSync(CERT, pair.certPem);
const other = generateTestKeyPair({ commonName: 'unrelated', days: 30 });
const OTHER_CERT = join(tmp, 'other.cert.pem');
writeFileSync(OTHER_CERT, other.certPem);

// ------------------------------------------------------------------------------ transform

const VECTORS = ['A1', 'A2', 'A3', 'A4', 'B', 'C', 'F01', 'F02', 'F03', 'F04', 'F05', 'F06', 'F07', 'F08', 'F09', 'F10'];

for (const v of VECTORS) {
  test(`transform: vector ${v} gives the exact expected bytes`, async (t) => {
    const r = await cli('transform', join(SMEV, `${v}.input.xml`));
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.equals(fx(`${v}.expected.xml`)));
  });
}

test('transform --id: vector D Response and vector G SenderProvidedRequestData', async (t) => {
  const d = await cli('transform', join(SMEV, 'D.response.xml'), '--id', 'SIGNED_BY_SMEV');
  t.is(d.code, 0, d.stderr);
  t.true(d.stdout.equals(fx('D.expected.xml')));
  const g = await cli('transform', join(SMEV, 'G.envelope.xml'), '--id', 'SIGNED_BY_CONSUMER');
  t.is(g.code, 0, g.stderr);
  t.true(g.stdout.equals(fx('G.expected.xml')));
});

test('transform --digest prints the DigestValue (real SMEV value for D, vector B value)', async (t) => {
  const d = await cli('transform', join(SMEV, 'D.envelope.xml'), '--id', 'SIGNED_BY_SMEV', '--digest');
  t.is(d.code, 0, d.stderr);
  t.is(d.stdout.toString(), 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=\n');
  const b = await cli('transform', join(SMEV, 'B.input.xml'), '--digest');
  t.is(b.stdout.toString(), 'RrR9ig8k4ZisKhsMpmYIY7Iqb8yKv+l1MjFg1kJ9eV0=\n');
});

test('transform: unknown Id → exit 1, names the file and lists the Ids present', async (t) => {
  const r = await cli('transform', join(SMEV, 'D.envelope.xml'), '--id', 'NOPE');
  t.is(r.code, 1);
  t.regex(r.stderr, /D\.envelope\.xml: no element with Id="NOPE"; Ids present: SIGNED_BY_SMEV/);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('transform: unsupported content (no-namespace element) → exit 1', async (t) => {
  const f = join(tmp, 'nons.xml');
  writeFileSync(f, '<root/>');
  const r = await cli('transform', f);
  t.is(r.code, 1);
  t.regex(r.stderr, /nons\.xml: .*<root>/);
});

// ------------------------------------------------------------------------------ verify

test('verify: real SMEV message (vector D) → exit 0, OK, stated digest', async (t) => {
  const r = await cli('verify', join(SMEV, 'D.envelope.xml'), '--at', D_AT);
  t.is(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  t.regex(out, /Signature 1: OK/);
  t.regex(out, /container: +\/soap:Envelope\/soap:Body\/ns2:GetResponseResponse\/ns2:ResponseMessage\/ns2:SMEVSignature/);
  t.regex(out, /reference: +#SIGNED_BY_SMEV -> \/soap:Envelope\/.*\/ns2:Response\n/);
  t.regex(out, /stated: +BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=/);
  t.regex(out, /computed: +BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk= \(matches\)/);
  t.regex(out, /serial: +02c6e6b10013b35ab94fe37d679c2fdc02/);
  t.regex(out, /valid: +2025-07-07T10:37:43.000Z \.\. 2026-07-07T10:47:43.000Z/);
});

test('verify --json: vector D with the certificate trusted (bare base64 DER file)', async (t) => {
  const r = await cli('verify', join(SMEV, 'D.envelope.xml'), '--at', D_AT, '--json', '--trust', join(SMEV, 'D.cert.b64'));
  t.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout.toString());
  t.is(res.length, 1);
  t.like(res[0], { ok: true, containerLocalName: 'SMEVSignature', referenceUri: '#SIGNED_BY_SMEV', targetLocalName: 'Response',
    statedDigest: 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=', computedDigest: 'BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=' });
  t.is(res[0].certificate.serialNumber, '02c6e6b10013b35ab94fe37d679c2fdc02');
});

test('verify: vector D checked now (certificate expired) → CertificateIsExpired, hint about --at', async (t) => {
  const r = await cli('verify', join(SMEV, 'D.envelope.xml'), '--at', '2026-08-01T00:00:00Z');
  t.is(r.code, 1);
  t.regex(r.stdout.toString(), /FAILED CertificateIsExpired/);
  const now = await cli('verify', join(SMEV, 'D.envelope.xml'));
  if (Date.now() > Date.parse('2026-07-07T10:47:43Z')) t.regex(now.stderr, /CertificateIsExpired .*--at/);
});

test('verify: tampered copy of vector D → exit 1, digest mismatch named', async (t) => {
  const f = join(tmp, 'D.tampered.xml');
  writeFileSync(f, fx('D.envelope.xml').toString('utf8').replace('<ns2:MessageID>b09d7e45', '<ns2:MessageID>b09d7e46'));
  const r = await cli('verify', f, '--at', D_AT);
  t.is(r.code, 1);
  const out = r.stdout.toString();
  t.regex(out, /Signature 1: FAILED SignatureIsInvalid: digest mismatch: computed \S+, stated BakE0MG7o0f7YmUwi5gmFrI2AAX3Xs5mpheQE4BLnSk=/);
  t.regex(out, /\(DIFFERS\)/);
  t.regex(r.stderr, /D\.tampered\.xml: 1 of 1 signature\(s\) failed: #1 in SMEVSignature: SignatureIsInvalid/);
});

test('verify: tampered SignatureValue → SignatureIsInvalid (signature does not verify)', async (t) => {
  const f = join(tmp, 'D.badsig.xml');
  const xml = fx('D.envelope.xml').toString('utf8').replace(/(<ds:SignatureValue>\s*)(.)/, (_m, a: string, c: string) => a + (c === 'A' ? 'B' : 'A'));
  writeFileSync(f, xml);
  const r = await cli('verify', f, '--at', D_AT, '--json');
  t.is(r.code, 1);
  t.like(JSON.parse(r.stdout.toString())[0], { ok: false, fault: 'SignatureIsInvalid' });
});

test('verify --trust with an unrelated certificate → CertificateIsNotFound', async (t) => {
  const r = await cli('verify', join(SMEV, 'D.envelope.xml'), '--at', D_AT, '--trust', join(SMEV, 'G.cert.pem'), '--trust', OTHER_CERT);
  t.is(r.code, 1);
  t.regex(r.stdout.toString(), /FAILED CertificateIsNotFound: certificate ".*" \(serial 02c6e6b10013b35ab94fe37d679c2fdc02\) is not trusted/);
});

test('verify: document without signatures → exit 1', async (t) => {
  const r = await cli('verify', join(TOOLS, 'unsigned-request.xml'));
  t.is(r.code, 1);
  t.regex(r.stderr, /unsigned-request\.xml: no ds:Signature found/);
});

// ------------------------------------------------------------------------------ sign → verify

test('sign → verify round trip: PersonalSignature, then CallerInformationSystemSignature; verify checks both', async (t) => {
  const p = join(tmp, 'personal.xml');
  const s1 = await cli('sign', join(TOOLS, 'unsigned-request.xml'), '--key', KEY, '--cert', CERT, '--id', 'PERSONAL_SIGNATURE', '--container', 'PersonalSignature', '--out', p);
  t.is(s1.code, 0, s1.stderr);
  t.is(s1.stdout.length, 0);
  // default target: the single SenderProvidedRequestData with an Id; default container CallerInformationSystemSignature
  const s2 = await cli('sign', p, '--key', KEY, '--cert', CERT);
  t.is(s2.code, 0, s2.stderr);
  const signed = s2.stdout.toString('utf8');
  t.true(signed.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope'));
  t.regex(signed, /<ns2:CallerInformationSystemSignature><ds:Signature xmlns:ds="http:\/\/www\.w3\.org\/2000\/09\/xmldsig#">/);
  const f = join(tmp, 'signed.xml');
  writeFileSync(f, signed);

  const v = await cli('verify', f, '--json', '--trust', CERT);
  t.is(v.code, 0, v.stderr);
  const res = JSON.parse(v.stdout.toString());
  t.is(res.length, 2);
  t.like(res[0], { ok: true, containerLocalName: 'PersonalSignature', referenceUri: '#PERSONAL_SIGNATURE', targetLocalName: 'ExportRequest' });
  t.like(res[1], { ok: true, containerLocalName: 'CallerInformationSystemSignature', referenceUri: '#SIGNED_BY_CONSUMER', targetLocalName: 'SenderProvidedRequestData' });
  t.is(res[1].certificate.subject, 'CN=smev-tools test, O=Test Bank, C=RU');
  t.is(res[0].computedDigest, res[0].statedDigest);

  // the stated digest equals `transform --digest` of the signed element
  const d = await cli('transform', f, '--id', 'SIGNED_BY_CONSUMER', '--digest');
  t.is(d.stdout.toString().trim(), res[1].statedDigest);

  // trusting only an unrelated certificate rejects both
  const u = await cli('verify', f, '--json', '--trust', OTHER_CERT);
  t.is(u.code, 1);
  t.deepEqual(JSON.parse(u.stdout.toString()).map((r: { fault: string }) => r.fault), ['CertificateIsNotFound', 'CertificateIsNotFound']);

  // tampering with the personally signed content breaks both signatures (the caller signature covers the personal one)
  const tf = join(tmp, 'signed.tampered.xml');
  writeFileSync(tf, signed.replace('<q:Sum>100.00</q:Sum>', '<q:Sum>900.00</q:Sum>'));
  const tv = await cli('verify', tf, '--json');
  t.is(tv.code, 1);
  t.deepEqual(JSON.parse(tv.stdout.toString()).map((r: { fault: string }) => r.fault), ['SignatureIsInvalid', 'SignatureIsInvalid']);

  // a duplicate Id (wrapping) → IncorrectSignatureTarget for the caller signature
  const wf = join(tmp, 'signed.wrapped.xml');
  writeFileSync(wf, signed.replace('<soap:Header/>', '<soap:Header><w:W xmlns:w="urn:w" Id="SIGNED_BY_CONSUMER"/></soap:Header>'));
  const wv = await cli('verify', wf, '--json');
  t.is(wv.code, 1);
  const wr = JSON.parse(wv.stdout.toString());
  t.like(wr[1], { ok: false, fault: 'IncorrectSignatureTarget' });
  t.regex(wr[1].reason, /2 elements carry Id="SIGNED_BY_CONSUMER"/);
});

test('verify: a valid signature in CallerInformationSystemSignature over the wrong element → IncorrectSignatureTarget', async (t) => {
  const s = await cli('sign', join(TOOLS, 'unsigned-request.xml'), '--key', KEY, '--cert', CERT, '--id', 'PERSONAL_SIGNATURE');
  t.is(s.code, 0, s.stderr);
  const f = join(tmp, 'wrong-target.xml');
  writeFileSync(f, s.stdout);
  const v = await cli('verify', f);
  t.is(v.code, 1);
  t.regex(v.stdout.toString(), /FAILED IncorrectSignatureTarget: <ns2:CallerInformationSystemSignature> must sign one of SenderProvidedRequestData, .* but the Reference points at <q:ExportRequest>/);
});

test('sign: missing container, already signed container, ambiguous target, wrong key → exit 1 with the reason', async (t) => {
  const nc = await cli('sign', join(TOOLS, 'no-container.xml'), '--key', KEY, '--cert', CERT);
  t.is(nc.code, 1);
  t.regex(nc.stderr, /no-container\.xml: there is no <CallerInformationSystemSignature> element to put the signature into/);

  const full = await cli('sign', join(SMEV, 'G.envelope.xml'), '--key', KEY, '--cert', CERT);
  t.is(full.code, 1);
  t.regex(full.stderr, /G\.envelope\.xml: <ns2:CallerInformationSystemSignature> is not empty/);

  const amb = join(tmp, 'ambiguous.xml');
  writeFileSync(amb, readFileSync(join(TOOLS, 'unsigned-request.xml'), 'utf8').replace('<ns2:TestMessage/>', '<ns2:TestMessage/><ns2:Timestamp Id="TS">2026-01-01T00:00:00Z</ns2:Timestamp>'));
  const a = await cli('sign', amb, '--key', KEY, '--cert', CERT);
  t.is(a.code, 1);
  t.regex(a.stderr, /ambiguous\.xml: several elements could be signed, choose one with --id: SIGNED_BY_CONSUMER \(.*\), TS \(.*\)/);

  const wrong = await cli('sign', join(TOOLS, 'unsigned-request.xml'), '--key', KEY, '--cert', OTHER_CERT);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /bank\.key\.pem: the private key does not match the certificate/);
});

// ------------------------------------------------------------------------------ usage

test('usage errors → exit 2 with one clear line', async (t) => {
  const cases: [string[], RegExp][] = [
    [['transform'], /^gkh-bus smev transform: missing <file> argument/],
    [['verify', join(tmp, 'does-not-exist.xml')], /^gkh-bus smev verify: .*does-not-exist\.xml: cannot read file: no such file$/],
    [['sign', join(TOOLS, 'unsigned-request.xml'), '--cert', CERT], /^gkh-bus smev sign: .*unsigned-request\.xml: missing --key <pem>/],
    [['sign', join(TOOLS, 'unsigned-request.xml'), '--key', KEY], /missing --cert/],
    [['sign', join(TOOLS, 'unsigned-request.xml'), '--key', join(tmp, 'nokey.pem'), '--cert', CERT], /nokey\.pem: cannot read private key: no such file/],
    [['verify', join(SMEV, 'D.envelope.xml'), '--trust', join(tmp, 'nocert.pem')], /nocert\.pem: cannot read certificate: no such file/],
    [['verify', join(SMEV, 'D.envelope.xml'), '--at', 'yesterday'], /--at "yesterday": not an ISO 8601 time/],
    [['verify', join(SMEV, 'D.envelope.xml'), '--bogus'], /Unknown option '--bogus'.*see "gkh-bus smev verify --help"/],
    [['frobnicate'], /unknown subcommand "frobnicate"/],
  ];
  for (const [args, re] of cases) {
    const r = await cli(...args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr.trim(), re);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('--help of each subcommand → exit 0 with its usage; gkh-bus --help lists smev', async (t) => {
  for (const [sub, re] of [['transform', /Usage: gkh-bus smev transform <file>/], ['verify', /Usage: gkh-bus smev verify <file>/], ['sign', /Usage: gkh-bus smev sign <file> --key/]] as const) {
    const r = await cli(sub, '--help');
    t.is(r.code, 0);
    t.regex(r.stdout.toString(), re);
  }
  const top = await cli('--help');
  t.is(top.code, 0);
  t.regex(top.stdout.toString(), /transform +print the exact bytes/);
  const main = await new Promise<string>((res) => execFile('node', ['bin/gkh-bus.js', '--help'], { cwd: ROOT }, (_e, out) => res(out)));
  t.regex(main, /smev +SMEV 3 XML tools/);
});
