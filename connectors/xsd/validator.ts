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
 * Speed: every xmllint-wasm call starts a worker thread and instantiates the WASM module (~tens of ms).
 * `validate()` therefore batches: calls made in the same tick (up to `maxBatch`) for the same schema set
 * are validated in ONE xmllint run with several input files, and the output is split per file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateXML } from 'xmllint-wasm';

export type SchemaSetName = 'smev-1.1' | 'smev-1.2' | 'smev-1.3' | 'gis-payments-1.0.0' | 'gis-payee-registry-1.0.0';

export interface SchemaFile {
  fileName: string;
  contents: string;
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
  return { fileName, contents: await readFile(path.join(dir, fileName), 'utf8') };
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
