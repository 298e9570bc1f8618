/**
 * Encoding decisions on BYTES (input-formats §2.10 for UFEBS XML, §4.7 for CSV) and decoding with iconv-lite.
 * Pure: Buffer in, text out; problems are thrown as IntakeError with the outcome codes of input-formats §1.
 */
import iconv from 'iconv-lite';
import { IntakeError, type RecordProblem } from './payment.ts';

export type SupportedEncoding = 'utf-8' | 'windows-1251' | 'cp866' | 'koi8-r';

export interface Decoded {
  encoding: SupportedEncoding;
  text: string;
  /** true when a UTF-8 BOM was present (and stripped) */
  bom: boolean;
  warnings: RecordProblem[];
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

export function hasUtf8Bom(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

/** UTF-16/32 by BOM or by the NUL pattern of "<" / "<?" without a BOM. */
export function looksUtf16or32(b: Buffer): string | undefined {
  if (b.length >= 4 && b[0] === 0x00 && b[1] === 0x00 && b[2] === 0xfe && b[3] === 0xff) return 'UTF-32BE';
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xfe && b[2] === 0x00 && b[3] === 0x00) return 'UTF-32LE';
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return 'UTF-16BE';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return 'UTF-16LE';
  if (b.length >= 4 && b[0] === 0x00 && b[1] !== 0x00 && b[2] === 0x00 && b[3] !== 0x00) return 'UTF-16BE';
  if (b.length >= 4 && b[0] !== 0x00 && b[1] === 0x00 && b[2] !== 0x00 && b[3] === 0x00) return 'UTF-16LE';
  return undefined;
}

/** 0 bytes, or nothing but whitespace and/or a UTF-8 BOM. */
export function isEffectivelyEmpty(b: Buffer): boolean {
  let i = hasUtf8Bom(b) ? 3 : 0;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

export function assertNotEmpty(b: Buffer): void {
  if (isEffectivelyEmpty(b)) throw new IntakeError('EMPTY_FILE', 'byte 0', b.length === 0 ? 'file has 0 bytes' : 'file contains only whitespace/BOM');
}

export function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false;
  return true;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Strict UTF-8 validity (no overlongs, no surrogates, nothing above U+10FFFF, no truncated sequence). */
export function isValidUtf8(b: Buffer): boolean {
  try {
    strictUtf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * `isAscii` and `isValidUtf8` over a file read in chunks: feed every chunk with `update`, then call `end`
 * (a UTF-8 sequence cut at the end of the file makes it invalid). Used by the streaming parsers to apply the
 * whole-file encoding rules without holding the file.
 */
export class EncodingTracker {
  ascii = true;
  utf8Valid = true;
  private check = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  update(b: Buffer): void {
    if (this.ascii && !isAscii(b)) this.ascii = false;
    if (!this.utf8Valid) return;
    try {
      this.check.decode(b, { stream: true });
    } catch {
      this.utf8Valid = false;
    }
  }

  end(): void {
    if (!this.utf8Valid) return;
    try {
      this.check.decode();
    } catch {
      this.utf8Valid = false;
    }
  }
}

export function decodeBytes(b: Buffer, enc: SupportedEncoding): string {
  return iconv.decode(b, enc, { stripBOM: false });
}

function normaliseLabel(label: string): SupportedEncoding | undefined {
  const l = label.trim().toLowerCase();
  if (l === 'utf-8' || l === 'utf8') return 'utf-8';
  if (l === 'windows-1251') return 'windows-1251';
  return undefined;
}

/** Reads `encoding="…"` from the XML declaration on bytes (the declaration is ASCII by definition). */
export function readXmlDeclEncoding(b: Buffer): string | undefined {
  const head = b.subarray(0, 200).toString('latin1');
  const m = /^<\?xml\s[^?]*?\bencoding\s*=\s*(["'])([A-Za-z0-9._-]*)\1/.exec(head);
  return m ? m[2] : undefined;
}

/** input-formats §2.10. */
export function decodeXml(bytes: Buffer): Decoded {
  assertNotEmpty(bytes);
  const wide = looksUtf16or32(bytes);
  if (wide) throw new IntakeError('UNSUPPORTED_ENCODING', 'byte 0', `${wide} is not supported for UFEBS`);
  const bom = hasUtf8Bom(bytes);
  const body = bom ? bytes.subarray(3) : bytes;
  const label = readXmlDeclEncoding(body);
  const warnings: RecordProblem[] = [];
  let declared: SupportedEncoding | undefined;
  if (label !== undefined) {
    declared = normaliseLabel(label);
    if (!declared) throw new IntakeError('UNSUPPORTED_ENCODING', 'line 1', `declared encoding "${label}" is neither windows-1251 nor UTF-8`);
  }
  const valid = isValidUtf8(body);
  const ascii = isAscii(body);
  if (declared === 'windows-1251') {
    if (valid && !ascii) {
      throw new IntakeError('ENCODING_MISMATCH', 'line 1', `declared "${label}" but the bytes are UTF-8 text with non-ASCII characters`);
    }
    if (bom) warnings.push({ code: 'BOM_IGNORED', location: 'byte 0', message: `UTF-8 BOM ignored: the file declares "${label}"` });
    return { encoding: 'windows-1251', text: decodeBytes(body, 'windows-1251'), bom, warnings };
  }
  if (!valid) {
    throw new IntakeError('ENCODING_MISMATCH', 'line 1', `${label ? `declared "${label}"` : 'no encoding declared (UTF-8 implied)'} but the bytes are not valid UTF-8`);
  }
  return { encoding: 'utf-8', text: decodeBytes(body, 'utf-8'), bom, warnings };
}

/**
 * input-formats §4.7: UTF-8 BOM → UTF-8; else valid UTF-8 containing non-ASCII → UTF-8; else the profile's
 * single-byte code page. A fixed profile encoding ('utf-8' / a code page) is honoured, except that a UTF-8 BOM
 * always means UTF-8 and a 'utf-8' profile with invalid bytes is an ENCODING_MISMATCH.
 */
export function decodeCsv(bytes: Buffer, profile: 'auto' | SupportedEncoding = 'auto', fallback: SupportedEncoding = 'windows-1251'): Decoded {
  assertNotEmpty(bytes);
  const wide = looksUtf16or32(bytes);
  if (wide) throw new IntakeError('UNSUPPORTED_ENCODING', 'byte 0', `${wide} is not supported`);
  const bom = hasUtf8Bom(bytes);
  const body = bom ? bytes.subarray(3) : bytes;
  if (bom) {
    if (!isValidUtf8(body)) throw new IntakeError('ENCODING_MISMATCH', 'byte 0', 'UTF-8 BOM but the bytes are not valid UTF-8');
    return { encoding: 'utf-8', text: decodeBytes(body, 'utf-8'), bom, warnings: [] };
  }
  if (profile === 'utf-8') {
    if (!isValidUtf8(body)) throw new IntakeError('ENCODING_MISMATCH', 'byte 0', 'layout says UTF-8 but the bytes are not valid UTF-8');
    return { encoding: 'utf-8', text: decodeBytes(body, 'utf-8'), bom, warnings: [] };
  }
  if (profile === 'auto' && !isAscii(body) && isValidUtf8(body)) {
    return { encoding: 'utf-8', text: decodeBytes(body, 'utf-8'), bom, warnings: [] };
  }
  const cp = profile === 'auto' ? fallback : profile;
  return { encoding: cp, text: decodeBytes(body, cp), bom, warnings: [] };
}

export { UTF8_BOM };
