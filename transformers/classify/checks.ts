/**
 * Check-digit validators (input-formats §2.9). Pure functions on strings; never coerce numbers.
 */

const INN10_W = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN11_W = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN12_W = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

function weighted(digits: string, weights: number[]): number {
  let s = 0;
  for (let i = 0; i < weights.length; i++) s += Number(digits[i]) * weights[i]!;
  return (s % 11) % 10;
}

/** INN of a legal entity (10 digits) or of an individual (12 digits), with check digits. */
export function isValidInn(inn: string): boolean {
  if (/^\d{10}$/.test(inn)) return weighted(inn, INN10_W) === Number(inn[9]);
  if (/^\d{12}$/.test(inn)) {
    return weighted(inn, INN11_W) === Number(inn[10]) && weighted(inn, INN12_W) === Number(inn[11]);
  }
  return false;
}

/** ОГРН (13 digits) or ОГРНИП (15 digits), with check digit. BigInt: 14-digit numbers exceed nothing, but stay exact. */
export function isValidOgrn(ogrn: string): boolean {
  if (/^\d{13}$/.test(ogrn)) {
    return Number((BigInt(ogrn.slice(0, 12)) % 11n) % 10n) === Number(ogrn[12]);
  }
  if (/^\d{15}$/.test(ogrn)) {
    return Number((BigInt(ogrn.slice(0, 14)) % 13n) % 10n) === Number(ogrn[14]);
  }
  return false;
}

export const BIC_RE = /^\d{9}$/;
export const ACCOUNT_RE = /^\d{5}[0-9ABCEHKMPTX]\d{14}$/;
export const KPP_RE = /^\d{4}[0-9A-Z]{2}\d{3}$/;

/** Latin letter allowed in the 6th position of an account (clearing currency) → digit used for the key. */
const ACC_LETTER: Record<string, string> = { A: '0', B: '1', C: '2', E: '3', H: '4', K: '5', M: '6', P: '7', T: '8', X: '9' };

function keySum(s23: string): number {
  const w = [7, 1, 3];
  let sum = 0;
  for (let i = 0; i < 23; i++) sum += (Number(s23[i]) * w[i % 3]!) % 10;
  return sum;
}

export type AccountKind = 'client' | 'correspondent';

/**
 * The 3-digit prefix for the account key: last 3 BIC digits for accounts at a credit institution;
 * "0" + BIC digits 5–6 for a correspondent account at a Bank of Russia unit (30101…) and for a Treasury
 * single account (40102…) at a ТОФК.
 */
export function accountKeyPrefix(account: string, bic: string, kind: AccountKind): string {
  if (kind === 'correspondent' || account.startsWith('40102')) return '0' + bic.slice(4, 6);
  return bic.slice(6, 9);
}

export type AccountCheck = { ok: true; skipped?: boolean } | { ok: false; reason: string };

/** Account shape + control key against the BIC. Treasury accounts `03…` are not checked (no key in public examples). */
export function checkAccount(account: string, bic: string, kind: AccountKind = 'client'): AccountCheck {
  if (!BIC_RE.test(bic)) return { ok: false, reason: `BIC "${bic}" is not 9 digits` };
  if (!ACCOUNT_RE.test(account)) return { ok: false, reason: `account "${account}" does not have the shape of a 20-character account` };
  if (kind === 'client' && account.startsWith('03')) return { ok: true, skipped: true };
  const acc = account.slice(0, 5) + (ACC_LETTER[account[5]!] ?? account[5]!) + account.slice(6);
  const s = accountKeyPrefix(account, bic, kind) + acc;
  if (keySum(s) % 10 !== 0) {
    const zeroed = s.slice(0, 11) + '0' + s.slice(12);
    const expected = (keySum(zeroed) * 3) % 10;
    return { ok: false, reason: `account ${account} control key ${account[8]} does not match BIC ${bic} (expected ${expected})` };
  }
  return { ok: true };
}

export function isValidAccount(account: string, bic: string, kind: AccountKind = 'client'): boolean {
  return checkAccount(account, bic, kind).ok;
}

/** A real calendar date YYYY-MM-DD. */
export function isValidIsoDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1) return false;
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d <= dim;
}
