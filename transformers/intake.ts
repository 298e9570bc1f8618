/**
 * Intake entry point: sniff on BYTES (whatever the file extension), route to the UFEBS or CSV parser.
 * Pure: no I/O. File-level problems throw IntakeError (input-formats §1).
 */
import { assertNotEmpty, hasUtf8Bom, looksUtf16or32 } from './encoding.ts';
import { IntakeError, type ParsedFile } from './payment.ts';
import { parseUfebs } from './ufebs/parse.ts';
import { parseCsv } from './csv/parse.ts';
import type { CsvLayout } from './csv/layout.ts';

export type Sniffed = 'UFEBS' | 'OTHER';

/** XML prolog or `<` as the first non-space character after a UTF-8 BOM → UFEBS. */
export function sniff(bytes: Buffer): Sniffed {
  let i = hasUtf8Bom(bytes) ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x3c ? 'UFEBS' : 'OTHER';
}

export function parseInputFile(bytes: Buffer, fileName: string, layouts: CsvLayout[]): ParsedFile {
  assertNotEmpty(bytes);
  const wide = looksUtf16or32(bytes);
  if (wide) throw new IntakeError('UNSUPPORTED_ENCODING', 'byte 0', `${wide} is not supported`);
  if (sniff(bytes) === 'UFEBS') return parseUfebs(bytes, fileName);
  const csv = parseCsv(bytes, fileName, layouts);
  if (csv) return csv;
  throw new IntakeError('UNKNOWN_FORMAT', 'line 1', `${fileName}: neither UFEBS XML nor one of the CSV layouts (${layouts.map((l) => l.name).join(', ') || 'none configured'})`);
}
