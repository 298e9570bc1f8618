/**
 * XSD validation with xmllint-wasm (libxml2 compiled to WebAssembly, no native deps, no network).
 *
 * Schema sets:
 *  - 'smev-1.1' | 'smev-1.2' | 'smev-1.3': a generated wrapper schema (no target namespace) that imports
 *    the local SOAP 1.1 envelope schema and the SMEV `types` + `faults` schemas of that version (which
 *    import `basic`, and in 1.3 `routing` and `directive`). Because every SMEV element is global and the
 *    SOAP Body/Fault detail are `processContents="lax"`, the SAME set validates
 *      (a) a whole `soap:Envelope` (Body children are validated strictly against the SMEV declarations), and
 *      (b) a bare SMEV element (e.g. `<ns2:SendRequestRequest …>` as root).
 *    `smev-1.2` uses schemas derived from 1.1 (see schemas/README.md): valid for client-side requests,
 *    NOT for SMEV-generated 1.2 MessageMetadata / status values.
 *    Signatures: `XMLDSigSignatureType` requires exactly one element in the XMLDSig namespace, so an empty
 *    `CallerInformationSystemSignature` is invalid; put a (dummy) `<ds:Signature/>` inside before validating
 *    unsigned documents. No XMLDSig schema is loaded, so its content is never checked.
 *  - 'gis-payments-1.0.0': the provisional ГИС payments bundle (request and response roots).
 *  - 'gis-payee-registry-1.0.0': the provisional ГИС payee registry export (ВС 95796; request and response roots).
 *
 * Engines (both are libxml2's XML Schema validator, so verdicts are the same):
 *  - `native` (default when it loads): libxmljs, libxml2 bound into the process (optional dependency, built
 *    from source by `npm ci`). Each schema set is compiled once per process; a document is parsed and
 *    validated in place (a few ms for a 500-item packet).
 *  - `wasm`: xmllint-wasm (libxml2 compiled to WebAssembly, no native build). Every call starts a worker
 *    thread, instantiates the WASM module and compiles the schema (~0.3 CPU-s), so `validate()` batches:
 *    calls made in the same tick (up to `maxBatch`) for the same schema set go to ONE xmllint run.
 * `GKH_XSD_ENGINE=wasm|native` chooses; without it `native` is used when libxmljs loads, else `wasm`.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateXML } from 'xmllint-wasm';

export type SchemaSetName = 'smev-1.1' | 'smev-1.2' | 'smev-1.3' | 'gis-payments-1.0.0' | 'gis-payee-registry-1.0.0';

export interface SchemaFile {
  fileName: string;
  contents: string;
  /** where the file lies on disk (absent for a generated wrapper) */
  path?: string;
}

export interface SchemaSet {
  name: SchemaSetName;
  /** Main schema (first) — passed to xmllint as --schema. */
  main: SchemaFile;
  /** Schema files the main schema imports (flat names, resolved by relative schemaLocation). */
  preload: SchemaFile[];
}

export interface ValidationError {
  message: string;
  line?: number;
}

export interface ValidationResult {
  valid: boolean;
  errors: ValidationError[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Root of the `schemas/` folder; override with GKH_BUS_SCHEMAS_DIR. */
export const SCHEMAS_DIR = process.env.GKH_BUS_SCHEMAS_DIR ?? path.resolve(here, '../../schemas');

const SOAP_XSD = 'soap-envelope-1.1.xsd';

function smevFiles(version: '1.1' | '1.2' | '1.3'): string[] {
  const base = ['basic', 'faults', 'types'];
  if (version === '1.3') base.push('routing', 'directive');
  return base.map((k) => `smev-message-exchange-${k}-${version}.xsd`);
}

const smevNs = (v: string, kind: 'types' | 'faults') =>
  `urn://x-artefacts-smev-gov-ru/services/message-exchange/types/${kind === 'types' ? '' : 'faults/'}${v}`;

function smevWrapper(version: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:import namespace="http://schemas.xmlsoap.org/soap/envelope/" schemaLocation="${SOAP_XSD}"/>
  <xs:import namespace="${smevNs(version, 'types')}" schemaLocation="smev-message-exchange-types-${version}.xsd"/>
  <xs:import namespace="${smevNs(version, 'faults')}" schemaLocation="smev-message-exchange-faults-${version}.xsd"/>
</xs:schema>
`;
}

const cache = new Map<SchemaSetName, Promise<SchemaSet>>();

async function readSchema(dir: string, fileName: string): Promise<SchemaFile> {
  const p = path.join(dir, fileName);
  return { fileName, contents: await readFile(p, 'utf8'), path: p };
}

async function load(name: SchemaSetName): Promise<SchemaSet> {
  if (name === 'gis-payments-1.0.0') {
    const dir = path.join(SCHEMAS_DIR, 'gis', 'payments-1.0.0');
    const [main, common, pc] = await Promise.all([
      readSchema(dir, 'gis-payments-1.0.0.xsd'),
      readSchema(dir, 'gis-common-1.0.0.xsd'),
      readSchema(dir, 'gis-payments-common-1.0.0.xsd'),
    ]);
    return { name, main, preload: [common, pc] };
  }
  if (name === 'gis-payee-registry-1.0.0') {
    const dir = path.join(SCHEMAS_DIR, 'gis', 'payee-registry-1.0.0');
    return { name, main: await readSchema(dir, 'gis-payee-registry-1.0.0.xsd'), preload: [] };
  }
  const m = /^smev-(1\.[123])$/.exec(name);
  if (!m) throw new Error(`unknown schema set: ${name}`);
  const version = m[1] as '1.1' | '1.2' | '1.3';
  const dir = path.join(SCHEMAS_DIR, 'smev', version);
  const files = await Promise.all(smevFiles(version).map((f) => readSchema(dir, f)));
  const soap = await readSchema(path.join(SCHEMAS_DIR, 'soap'), SOAP_XSD);
  return {
    name,
    main: { fileName: `gkh-bus-${name}-set.xsd`, contents: smevWrapper(version) },
    preload: [soap, ...files],
  };
}

/** Loads (once per process) the schema files of a set. */
export function loadSchemaSet(name: SchemaSetName): Promise<SchemaSet> {
  let p = cache.get(name);
  if (!p) {
    p = load(name);
    p.catch(() => cache.delete(name));
    cache.set(name, p);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// batching

interface Pending {
  xml: string;
  resolve: (r: ValidationResult) => void;
  reject: (e: unknown) => void;
}

interface Queue {
  items: Pending[];
  scheduled: boolean;
  /** xmllint runs of this set in progress */
  running: number;
}

/**
 * xmllint runs of one schema set at the same time (two: one may wait on a slow worker). Each run costs a worker, a WebAssembly instance (up to
 * 256 MB) and a schema compilation (~200 ms) whatever the number of documents, so documents that arrive
 * while a run is busy wait and go together in the next run (at most maxBatch).
 */
export const MAX_RUNS_PER_SET = 2;

const queues = new WeakMap<SchemaSet, Queue>();
/** Maximum number of documents validated in one xmllint run. */
export let maxBatch = 100;
export function setMaxBatch(n: number): void {
  maxBatch = Math.max(1, Math.floor(n));
}

const DOCTYPE_RE = /<!DOCTYPE/i;

/**
 * Validates an XML string (whole document; no DOCTYPE allowed) against a schema set.
 * Never rejects for invalid or malformed XML (→ `valid: false`); rejects only on internal failures.
 */
export function validate(xml: string, set: SchemaSet): Promise<ValidationResult> {
  if (DOCTYPE_RE.test(xml)) {
    return Promise.resolve({ valid: false, errors: [{ message: 'DOCTYPE is not allowed' }] });
  }
  const lx = engine() === 'native' ? libxml() : null;
  if (lx) {
    try {
      return Promise.resolve(validateNative(lx, xml, set));
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return new Promise<ValidationResult>((resolve, reject) => {
    let q = queues.get(set);
    if (!q) {
      q = { items: [], scheduled: false, running: 0 };
      queues.set(set, q);
    }
    q.items.push({ xml, resolve, reject });
    if (!q.scheduled) {
      q.scheduled = true;
      const qq = q;
      setImmediate(() => {
        qq.scheduled = false;
        pump(qq, set);
      });
    }
  });
}

/** Starts runs while there is waiting work and a free run slot. */
function pump(q: Queue, set: SchemaSet): void {
  while (q.items.length && q.running < MAX_RUNS_PER_SET) {
    const batch = q.items.splice(0, maxBatch);
    q.running++;
    void runBatch(batch, set).finally(() => {
      q.running--;
      pump(q, set);
    });
  }
}

async function runBatch(batch: Pending[], set: SchemaSet): Promise<void> {
  try {
    const results = await validateMany(
      batch.map((b) => b.xml),
      set,
    );
    batch.forEach((b, i) => b.resolve(results[i]!));
  } catch (e) {
    if (batch.length === 1) {
      batch[0]!.reject(e);
      return;
    }
    // one malformed document makes xmllint exit with a non-validation code: validate one by one
    await Promise.all(
      batch.map(async (b) => {
        try {
          const [r] = await validateMany([b.xml], set);
          b.resolve(r!);
        } catch (err) {
          b.reject(err);
        }
      }),
    );
  }
}

const fileName = (i: number) => `doc${i}.xml`;

async function validateMany(xmls: string[], set: SchemaSet): Promise<ValidationResult[]> {
  let raw: string;
  let exitOk = true;
  try {
    const r = await validateXML({
      xml: xmls.map((contents, i) => ({ fileName: fileName(i), contents })),
      schema: [set.main],
      preload: set.preload,
      maxMemoryPages: 4096,
    });
    raw = r.rawOutput;
  } catch (e) {
    // xmllint exit codes other than 0/3/4: parse errors (1) etc. — stderr is in the message
    const err = e as Error & { code?: number };
    if (typeof err.code !== 'number') throw e;
    if (/Schemas parser error|failed to compile/i.test(err.message)) throw e;
    raw = err.message;
    exitOk = false;
  }
  const results: ValidationResult[] = xmls.map(() => ({ valid: true, errors: [] }));
  const seen = new Set<number>();
  let current = -1;
  for (const line of raw.split('\n')) {
    if (!line.trim()) continue;
    const m = /^doc(\d+)\.xml(?::(\d+))?(?::|\s)\s*(.*)$/.exec(line);
    if (m) {
      const idx = Number(m[1]);
      current = idx;
      const rest = m[3] ?? '';
      if (!m[2] && /^validates$/.test(rest)) {
        seen.add(idx);
        continue;
      }
      if (!m[2] && /^fails to validate$/.test(rest)) {
        seen.add(idx);
        results[idx]!.valid = false;
        continue;
      }
      results[idx]!.valid = false;
      results[idx]!.errors.push({ message: rest, line: m[2] ? Number(m[2]) : undefined });
    } else if (current >= 0) {
      // continuation (e.g. source excerpt of a parser error)
      const r = results[current]!;
      r.valid = false;
      const last = r.errors[r.errors.length - 1];
      if (last && !/^\s*\^\s*$/.test(line)) last.message += `\n${line}`;
    }
  }
  if (!exitOk) {
    // documents without a verdict in a failed run are not trusted
    xmls.forEach((_, i) => {
      const r = results[i]!;
      if (!seen.has(i) && r.errors.length === 0) {
        r.valid = false;
        r.errors.push({ message: raw.trim() || 'xmllint failed' });
      }
    });
  }
  for (const r of results) if (!r.valid && r.errors.length === 0) r.errors.push({ message: 'fails to validate' });
  return results;
}

// ---------------------------------------------------------------------------------------------
// native engine (libxmljs)

interface LxError { message: string; line?: number; column?: number }
interface LxDoc { _ref: unknown }
interface Libxml {
  parseXml(xml: string, opts?: { baseUrl?: string; flags?: number[] }): LxDoc;
  XMLParseFlags: Record<string, number>;
}
/** the libxml2 functions libxmljs binds (its `validate()` recompiles the schema on every call, so the bus calls them itself) */
interface LxBindings {
  withStructuredErrors<T>(fn: (errors: LxError[]) => T): T;
  xmlSchemaNewDocParserCtxt(doc: unknown): unknown;
  xmlSchemaParse(ctxt: unknown): unknown;
  xmlSchemaFreeParserCtxt(ctxt: unknown): void;
  xmlSchemaNewValidCtxt(schema: unknown): unknown;
  xmlSchemaValidateDoc(ctxt: unknown, doc: unknown): number;
  xmlSchemaFreeValidCtxt(ctxt: unknown): void;
  xmlReadMemory(buffer: Buffer, size: number, url: string, encoding: string, options: number): unknown;
  xmlFreeDoc(doc: unknown): void;
}

let lxLoaded: { lx: Libxml; b: LxBindings } | null | undefined;
let lxLoadError: string | undefined;

/** libxmljs (pinned 1.0.11), or null when it is not installed / did not build (then the wasm engine is used). */
function libxml(): { lx: Libxml; b: LxBindings } | null {
  if (lxLoaded !== undefined) return lxLoaded;
  try {
    const req = createRequire(import.meta.url);
    const lx = req('libxmljs') as Libxml;
    const b = req('libxmljs/dist/lib/bindings/functions.js') as LxBindings;
    for (const f of ['withStructuredErrors', 'xmlSchemaNewDocParserCtxt', 'xmlSchemaParse', 'xmlSchemaNewValidCtxt', 'xmlSchemaValidateDoc', 'xmlReadMemory', 'xmlFreeDoc'] as const) {
      if (typeof b[f] !== 'function') throw new Error(`libxmljs binds no ${f}`);
    }
    lxLoaded = { lx, b };
  } catch (e) {
    lxLoaded = null;
    lxLoadError = (e as Error).message;
  }
  return lxLoaded;
}

/** The engine in use: `native` or `wasm` (see the module comment). */
export function engine(): 'native' | 'wasm' {
  const want = process.env.GKH_XSD_ENGINE;
  if (want === 'wasm') return 'wasm';
  if (want === 'native') {
    if (!libxml()) throw new Error(`GKH_XSD_ENGINE=native but libxmljs cannot be loaded: ${lxLoadError}`);
    return 'native';
  }
  if (want !== undefined && want !== '') throw new Error(`GKH_XSD_ENGINE=${want}: expected native or wasm`);
  return libxml() ? 'native' : 'wasm';
}

/** a compiled schema; the schema document is kept referenced for as long as the schema lives */
interface Compiled { schema: unknown; doc: LxDoc }
const compiled = new WeakMap<SchemaSet, Compiled>();

/** The schema set compiled by libxml2 (once per process): imports resolve to the files on disk. */
function compiledSchema({ lx, b }: { lx: Libxml; b: LxBindings }, set: SchemaSet): Compiled {
  let c = compiled.get(set);
  if (c) return c;
  let main = set.main.contents;
  // a generated wrapper imports the preloaded files by flat name: point it at their paths
  for (const f of set.preload) {
    if (f.path) main = main.split(`schemaLocation="${f.fileName}"`).join(`schemaLocation="${f.path}"`);
  }
  // the base of a generated wrapper is a file name of its own (a base equal to an imported file is a self-import)
  const base = set.main.path ?? path.join(SCHEMAS_DIR, set.main.fileName);
  const doc = lx.parseXml(main, { baseUrl: base });
  const { schema, errors } = b.withStructuredErrors((errors) => {
    const pctx = b.xmlSchemaNewDocParserCtxt(doc._ref);
    if (!pctx) return { schema: null, errors };
    const schema = b.xmlSchemaParse(pctx);
    b.xmlSchemaFreeParserCtxt(pctx);
    return { schema, errors };
  });
  if (!schema) {
    throw new Error(`schema set ${set.name} failed to compile: ${errors.map((e) => String(e.message).trim()).join('; ') || 'unknown error'}`);
  }
  c = { schema, doc };
  compiled.set(set, c);
  return c;
}

function validateNative(n: { lx: Libxml; b: LxBindings }, xml: string, set: SchemaSet): ValidationResult {
  const { lx, b } = n;
  const { schema } = compiledSchema(n, set);
  // parsed through the raw binding and freed below: a document of libxmljs's own wrapper is freed only when V8
  // collects the wrapper, and with a small JS heap that is rare — RSS grew by ≈ 0.7 MB per 0.5 MB packet
  // (test/xsd-engines.test.ts)
  // no DTD is loaded and no entity is expanded (XML_PARSE_NOENT / DTDLOAD are not set); no network
  const flags = lx.XMLParseFlags.XML_PARSE_BIG_LINES! + lx.XMLParseFlags.XML_PARSE_NONET!;
  const bytes = Buffer.from(xml, 'utf8');
  const parsed = b.withStructuredErrors((errors) => ({ doc: b.xmlReadMemory(bytes, bytes.length, '', 'UTF-8', flags), errors }));
  if (!parsed.doc) {
    const first = parsed.errors[0];
    return { valid: false, errors: [{ message: `not well-formed: ${String(first?.message ?? 'cannot be parsed').trim()}`, line: first?.line || undefined }] };
  }
  const doc = { _ref: parsed.doc };
  try {
    return checkNative(b, schema, doc, set);
  } finally {
    b.xmlFreeDoc(parsed.doc);
  }
}

function checkNative(b: LxBindings, schema: unknown, doc: LxDoc, set: SchemaSet): ValidationResult {
  const { rc, errors } = b.withStructuredErrors((errors) => {
    const vctx = b.xmlSchemaNewValidCtxt(schema);
    if (!vctx) throw new Error(`schema set ${set.name}: libxml2 could not create a validation context`);
    try {
      return { rc: b.xmlSchemaValidateDoc(vctx, doc._ref), errors };
    } finally {
      b.xmlSchemaFreeValidCtxt(vctx);
    }
  });
  if (rc === 0) return { valid: true, errors: [] };
  if (rc < 0) throw new Error(`schema set ${set.name}: libxml2 internal validation error ${rc}`);
  const out: ValidationError[] = errors.map((x) => ({ message: String(x.message).trim(), line: x.line || undefined }));
  if (!out.length) out.push({ message: 'fails to validate' });
  return { valid: false, errors: out };
}
