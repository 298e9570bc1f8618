import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateTestKeyPair, loadCertificate, loadPrivateKey, type GostProvider } from '../connectors/smev3/crypto/index.ts';
import type { Signer } from '../connectors/smev3/signature.ts';

/** The test parties: the bank (our information system), SMEV (signs replies), ГИС ЖКХ (signs its answers). */
export const PARTIES = {
  bank: { commonName: 'gkh-bus test bank information system', org: 'АО "Банк Образец" (TEST)' },
  smev: { commonName: 'SMEV 3 simulator (TEST)', org: 'gkh-bus simulator' },
  gis: { commonName: 'ГИС ЖКХ simulator (TEST)', org: 'gkh-bus simulator' },
} as const;
export type Party = keyof typeof PARTIES;

/** Writes `<party>.key.pem` and `<party>.cert.pem` for each party that has none yet; returns the parties written. */
export function ensureTestKeys(dir: string, parties: Party[] = ['bank', 'smev', 'gis'], force = false): Party[] {
  mkdirSync(dir, { recursive: true });
  const made: Party[] = [];
  for (const p of parties) {
    const key = join(dir, `${p}.key.pem`), cert = join(dir, `${p}.cert.pem`);
    if (!force && existsSync(key) && existsSync(cert)) continue;
    const pair = generateTestKeyPair({ ...PARTIES[p], days: 3650 });
    writeFileSync(key, pair.keyPem, { mode: 0o600 });
    writeFileSync(cert, pair.certPem);
    made.push(p);
  }
  return made;
}

export function loadSigner(dir: string, party: Party, provider: GostProvider): Signer {
  return {
    key: loadPrivateKey(readFileSync(join(dir, `${party}.key.pem`), 'utf8')),
    cert: loadCertificate(readFileSync(join(dir, `${party}.cert.pem`))),
    provider,
  };
}
