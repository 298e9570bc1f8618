import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import iconv from 'iconv-lite';

/** Encodes text for a bank system: UTF-8 (with BOM, so spreadsheets open it right) or windows-1251. */
export function encodeText(text: string, encoding: 'utf-8' | 'windows-1251'): Buffer {
  return encoding === 'utf-8' ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]) : iconv.encode(text, 'win1251');
}

/** Writes a file into an outbox folder under a temporary name, then renames it: a reader never sees half a file. */
export async function writeOutboxFile(dir: string, name: string, bytes: Buffer): Promise<string> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const final = join(dir, name);
  await writeFile(tmp, bytes);
  await rename(tmp, final);
  return final;
}
