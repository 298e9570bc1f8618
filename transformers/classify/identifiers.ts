/**
 * ЖКУ identifier extraction (input-formats §3.2, gis-zhkh §5). Pure, driven by IdentifierConfig.
 * Order: field 22 (whole value), then the CSV hint fields (whole value), then the purpose text
 * (ИПД, then ИЖКУ, then ЕЛС, masking each match). Boundaries are "not preceded / followed by a digit"
 * (never `\b`, which is ASCII-only in JavaScript).
 */
import type { Period, PaymentHints, RecordProblem } from '../payment.ts';

export type IdType = 'paymentDocumentId' | 'serviceId' | 'els';

export interface IdentifierConfig {
  /** letter class of the 2-letter pair (regex source, used after upper-casing) */
  letters: string;
  /** Latin look-alikes detected in the letter pair (warning LATIN_LOOKALIKE) */
  latinLookalikes: string;
  /** map Latin look-alikes to Cyrillic and accept the token (off by default) */
  mapLatinLookalikes: boolean;
  /** markers that announce an identifier (regex sources, matched on the upper-cased purpose) */
  markers: string[];
  /** markers of a лицевой счёт (regex sources, upper-cased text) */
  accountMarkers: string[];
  /** the лицевой счёт token after a marker */
  accountToken: string;
  /** month names (stems) for `за <месяц> <год>`, January first */
  monthStems: string[];
}

export const DEFAULT_IDENTIFIER_CONFIG: IdentifierConfig = {
  letters: 'А-ЯЁ',
  latinLookalikes: 'ABEKMHOPCTXY',
  mapLatinLookalikes: false,
  markers: ['///ЖКУ', '///ИПД', 'ИПД:?', 'ЕЛС:?', 'ИЖКУ:?', 'ИДПД:?'],
  accountMarkers: ['Л/СЧ\\.?', 'Л/С\\.?', 'ЛИЦЕВОЙ\\s+СЧ[ЕЁ]Т', '(?<![А-ЯЁA-Z])ЛС'],
  accountToken: '[0-9][0-9/-]*',
  monthStems: ['ЯНВАР', 'ФЕВРАЛ', 'МАРТ', 'АПРЕЛ', 'МА[ЙЯ]', 'ИЮН', 'ИЮЛ', 'АВГУСТ', 'СЕНТЯБР', 'ОКТЯБР', 'НОЯБР', 'ДЕКАБР'],
};

const LOOKALIKE_MAP: Record<string, string> = { A: 'А', B: 'В', E: 'Е', K: 'К', M: 'М', H: 'Н', O: 'О', P: 'Р', C: 'С', T: 'Т', X: 'Х', Y: 'У' };

export interface Identifiers {
  paymentDocumentId?: string;
  serviceId?: string;
  els?: string;
  accountNumber?: string;
  period?: Period;
  /** where each identifier came from: 'field22' | 'hint:<name>' | 'purpose' */
  sources: Partial<Record<IdType | 'accountNumber' | 'period', string>>;
  warnings: RecordProblem[];
}

export interface IdentifierInput {
  paymentId?: string;
  hints?: PaymentHints;
  purpose?: string;
  /** for warnings */
  location?: string;
  ref?: string;
}

/** Upper-case char by char, keeping the length (so masks and indexes stay aligned). */
function upper(s: string): string {
  let out = '';
  for (const c of s) {
    const u = c.toUpperCase();
    out += u.length === c.length ? u : c;
  }
  return out;
}

function shapes(cfg: IdentifierConfig, withLatin: boolean) {
  const L = withLatin ? `[${cfg.letters}${cfg.latinLookalikes}]` : `[${cfg.letters}]`;
  const els = `\\d{2}${L}{2}\\d{6}`;
  return {
    paymentDocumentId: `${els}-\\d{2}-\\d{4}`,
    serviceId: `${els}-\\d{2}(?!-\\d)`,
    els: `${els}(?!-\\d)`,
  } as Record<IdType, string>;
}

const ORDER: IdType[] = ['paymentDocumentId', 'serviceId', 'els'];
const NAMES: Record<IdType, string> = { paymentDocumentId: 'ИПД', serviceId: 'ИЖКУ', els: 'ЕЛС' };

/** Returns the identifier with Latin look-alikes resolved per config, or undefined + a warning flag. */
function normaliseToken(tok: string, cfg: IdentifierConfig): { value?: string; latin: boolean } {
  const pair = tok.slice(2, 4);
  const latin = [...pair].some((c) => cfg.latinLookalikes.includes(c));
  if (!latin) return { value: tok, latin };
  if (!cfg.mapLatinLookalikes) return { latin };
  return { value: tok.slice(0, 2) + [...pair].map((c) => LOOKALIKE_MAP[c] ?? c).join('') + tok.slice(4), latin };
}

/** Whole-value match (field 22, hint columns): which type does the trimmed value have exactly? */
export function matchWhole(value: string, cfg: IdentifierConfig = DEFAULT_IDENTIFIER_CONFIG): { type: IdType; value?: string; latin: boolean } | undefined {
  const v = upper(value.trim());
  const sh = shapes(cfg, true);
  for (const t of ORDER) {
    if (new RegExp(`^(?:${sh[t]})$`, 'u').test(v)) return { type: t, ...normaliseToken(v, cfg) };
  }
  return undefined;
}

const MONTHS_RE = (cfg: IdentifierConfig) => cfg.monthStems.map((m) => `(${m})`).join('|');

/** Period from free text: `MM.YYYY`, `MMYYYY` after ЗА/ПЕРИОД, or `[за] <месяц> <год>`; the earliest wins. Dates do not count. */
export function findPeriod(text: string, cfg: IdentifierConfig = DEFAULT_IDENTIFIER_CONFIG): Period | undefined {
  const u = upper(text);
  const cands: { index: number; p: Period }[] = [];
  const num = /(?<![\d.])(0[1-9]|1[0-2])\.((?:19|20)\d{2})(?![\d])/gu;
  for (const m of u.matchAll(num)) cands.push({ index: m.index!, p: { month: Number(m[1]), year: Number(m[2]) } });
  // `MMYYYY` only right after ЗА / ПЕРИОД (a bare 6-digit number is anything)
  const compact = /(?<![А-ЯЁA-Z])(?:ЗА|ПЕРИОД|ПЕР\.)\s*:?\s*(0[1-9]|1[0-2])((?:19|20)\d{2})(?!\d)/gu;
  for (const m of u.matchAll(compact)) cands.push({ index: m.index!, p: { month: Number(m[1]), year: Number(m[2]) } });
  // `[за] <месяц> <год>`: a month name at a word start followed by a year
  const word = new RegExp(`(?<![А-ЯЁA-Z])(?:ЗА\\s+)?(?:${MONTHS_RE(cfg)})[А-ЯЁ]*\\.?\\s+((?:19|20)\\d{2})(?!\\d)`, 'gu');
  for (const m of u.matchAll(word)) {
    const idx = m.slice(1, 1 + cfg.monthStems.length).findIndex((g) => g !== undefined);
    cands.push({ index: m.index!, p: { month: idx + 1, year: Number(m[1 + cfg.monthStems.length]) } });
  }
  cands.sort((a, b) => a.index - b.index);
  return cands[0]?.p;
}

/** Period from a dedicated column: `MMYYYY` or `MM.YYYY`. */
export function parsePeriodField(v: string): Period | undefined {
  const m = /^(0[1-9]|1[0-2])\.?((?:19|20)\d{2})$/.exec(v.trim());
  return m ? { month: Number(m[1]), year: Number(m[2]) } : undefined;
}

/** лицевой счёт after a marker (`л/с`, `л/сч`, `лицевой счёт`, standalone `ЛС`, optional `:` / `№`). */
export function findAccountNumber(text: string, cfg: IdentifierConfig = DEFAULT_IDENTIFIER_CONFIG): string | undefined {
  const u = upper(text);
  const re = new RegExp(`(?:${cfg.accountMarkers.join('|')})\\s*(?:[:№]\\s*)*(${cfg.accountToken})(?![0-9A-ZА-ЯЁ])`, 'u');
  const m = re.exec(u);
  if (!m) return undefined;
  return text.substr(m.index + m[0].length - m[1]!.length, m[1]!.length).replace(/[/-]+$/, '') || undefined;
}

export function extractIdentifiers(input: IdentifierInput, cfg: IdentifierConfig = DEFAULT_IDENTIFIER_CONFIG): Identifiers {
  const res: Identifiers = { sources: {}, warnings: [] };
  const location = input.location ?? '';
  const warn = (code: string, message: string) => res.warnings.push({ code, location, message, ...(input.ref ? { ref: input.ref } : {}) });
  const put = (t: IdType, value: string, source: string) => {
    if (res[t] === undefined) {
      res[t] = value;
      res.sources[t] = source;
    }
  };

  // 1. field 22: whole value, exactly one pattern
  const f22 = input.paymentId?.trim();
  if (f22 && f22 !== '0') {
    const m = matchWhole(f22, cfg);
    if (m?.latin) warn('LATIN_LOOKALIKE', `field 22 "${f22}" has Latin look-alike letters in the letter pair${m.value ? ' (mapped to Cyrillic)' : ' (not used)'}`);
    if (m?.value) put(m.type, m.value, 'field22');
  }

  // 2. CSV hint fields (whole value)
  const h = input.hints ?? {};
  const hintFields: [keyof PaymentHints, IdType | undefined][] = [
    ['paymentDocumentId', 'paymentDocumentId'],
    ['serviceId', 'serviceId'],
    ['els', 'els'],
    ['idField', undefined],
  ];
  for (const [name, expected] of hintFields) {
    const v = h[name]?.trim();
    if (!v) continue;
    const m = matchWhole(v, cfg);
    if (m?.latin) warn('LATIN_LOOKALIKE', `${name} "${v}" has Latin look-alike letters in the letter pair${m.value ? ' (mapped to Cyrillic)' : ' (not used)'}`);
    if (!m) {
      if (expected) warn('ID_INVALID', `${name} "${v}" is not a valid ${NAMES[expected]}`);
      continue;
    }
    if (expected && m.type !== expected) warn('ID_INVALID', `${name} "${v}" is a ${NAMES[m.type]}, not a ${NAMES[expected]}`);
    if (m.value) put(m.type, m.value, `hint:${name}`);
  }

  // 3. purpose: ИПД, ИЖКУ, ЕЛС with masking
  const purpose = input.purpose ?? '';
  let text = upper(purpose);
  const found: { start: number; end: number }[] = [];
  const lookalikeStarts = new Set<number>();
  const sh = shapes(cfg, true);
  for (const t of ORDER) {
    const re = new RegExp(`(?<!\\d)(${sh[t]})(?!\\d)`, 'gu');
    for (const m of [...text.matchAll(re)]) {
      const tok = m[1]!;
      const n = normaliseToken(tok, cfg);
      if (n.latin) warn('LATIN_LOOKALIKE', `purpose token "${purpose.substr(m.index!, tok.length)}" has Latin look-alike letters${n.value ? ' (mapped to Cyrillic)' : ' (not used)'}`);
      text = text.slice(0, m.index!) + ' '.repeat(tok.length) + text.slice(m.index! + tok.length);
      if (!n.value) {
        lookalikeStarts.add(m.index!);
        continue;
      }
      found.push({ start: m.index!, end: m.index! + tok.length });
      put(t, n.value, 'purpose');
    }
  }
  // markers without a valid token (a rejected look-alike token was warned about already)
  const markerRe = new RegExp(`(?<![А-ЯЁA-Z])(?:${cfg.markers.join('|')})`, 'gu');
  const up = upper(purpose);
  const checked = new Set<number>();
  for (const m of up.matchAll(markerRe)) {
    let i = m.index! + m[0].length;
    while (i < up.length && /[\s;:,|/№=.-]/u.test(up[i]!)) i++;
    if (checked.has(i)) continue;
    checked.add(i);
    if (!found.some((f) => f.start === i) && !lookalikeStarts.has(i)) {
      warn('ID_MARKER_WITHOUT_TOKEN', `marker "${purpose.substr(m.index!, m[0].length)}" is not followed by a valid identifier`);
    }
  }

  // 4. prefix consistency
  const prefixes = new Set(ORDER.map((t) => res[t]?.slice(0, 10)).filter((x): x is string => !!x));
  if (prefixes.size > 1) warn('ID_PREFIX_MISMATCH', `ЖКУ identifiers do not share the 10-character prefix: ${[...prefixes].join(', ')}`);

  // лицевой счёт: hint column first, then the purpose
  if (h.accountNumber?.trim()) {
    res.accountNumber = h.accountNumber.trim();
    res.sources.accountNumber = 'hint:accountNumber';
  } else {
    const a = findAccountNumber(purpose, cfg);
    if (a) {
      res.accountNumber = a;
      res.sources.accountNumber = 'purpose';
    }
  }

  // period: column first, then the purpose (identifiers masked: an ИПД suffix is never a period)
  const ph = h.period?.trim();
  if (ph) {
    const p = parsePeriodField(ph);
    if (p) {
      res.period = p;
      res.sources.period = 'hint:period';
    } else warn('PERIOD_INVALID', `period column "${ph}" is not MMYYYY`);
  }
  if (!res.period) {
    let masked = purpose;
    for (const f of found) masked = masked.slice(0, f.start) + ' '.repeat(f.end - f.start) + masked.slice(f.end);
    const p = findPeriod(masked, cfg);
    if (p) {
      res.period = p;
      res.sources.period = 'purpose';
    }
  }
  return res;
}
