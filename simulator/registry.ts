/**
 * The simulated ГИС payee registry (ВС 95796): generated organisations with one or more requisite sets each,
 * deterministic from a seed (mulberry32), served in pages of a consistent snapshot, and changing between
 * exports (some requisites added, changed, removed) so that the bus's versioning and diff can be tested.
 */
import { checkAccount } from '../transformers/classify/checks.ts';
import type { PayeeRecord } from '../transformers/payment.ts';
import type { RegistryOrganization, RegistryPage, RegistryResponse } from '../transformers/gis/registry.ts';

export interface RegistryOptions {
  /** organisations in the first export (default 20 000) */
  organizations?: number;
  seed?: number;
  /** share of requisites changed per new export, and of organisations added / removed (default 0.01 / 0.005 / 0.005) */
  changeRate?: number;
  addRate?: number;
  removeRate?: number;
  /** organisations every export starts with (e.g. the sample registry), kept unchanged */
  fixed?: PayeeRecord[];
}

/** mulberry32: a small, fast, deterministic PRNG */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BANKS = [
  { bic: '044525225', corr: '30101810400000000225', name: 'ПАО Сбербанк' },
  { bic: '044525593', corr: '30101810200000000593', name: 'АО "Альфа-Банк"' },
  { bic: '044525187', corr: '30101810700000000187', name: 'Банк ВТБ (ПАО)' },
  { bic: '046015207', corr: '30101810500000000207', name: 'ЮГО-ЗАПАДНЫЙ БАНК ПАО СБЕРБАНК' },
  { bic: '045004641', corr: '30101810500000000641', name: 'СИБИРСКИЙ БАНК ПАО СБЕРБАНК' },
];
const KINDS = ['ООО "УК', 'ТСЖ "', 'ЖСК "', 'АО "Теплосеть', 'МУП "Водоканал', 'ООО "Расчётный центр', 'НКО "Фонд капремонта'];
const WORDS = ['Заречье', 'Садовая', 'Северный', 'Лесной', 'Центральный', 'Новые Черёмушки', 'Гагаринский', 'Волжский', 'Приморье', 'Ясенево'];

function digits(r: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(r() * 10);
  return s;
}

function withInnCheck(base9: string): string {
  const w = [2, 4, 10, 3, 5, 9, 4, 6, 8];
  let s = 0;
  for (let i = 0; i < 9; i++) s += Number(base9[i]) * w[i]!;
  return base9 + ((s % 11) % 10);
}

function withOgrnCheck(base12: string): string {
  return base12 + Number((BigInt(base12) % 11n) % 10n);
}

/** a 20-character account (8-character prefix, key digit, 11 digits) with a valid key against the BIC */
function account(r: () => number, prefix8: string, bic: string): string {
  const rest = digits(r, 11);
  for (let k = 0; k < 10; k++) {
    const acc = `${prefix8}${k}${rest}`;
    if (checkAccount(acc, bic, 'client').ok) return acc;
  }
  throw new Error('no account key found'); // cannot happen: exactly one key digit fits
}

function uuid(r: () => number): string {
  const h = () => Math.floor(r() * 16).toString(16);
  let s = '';
  for (let i = 0; i < 32; i++) s += i === 12 ? '4' : i === 16 ? '89ab'[Math.floor(r() * 4)] : h();
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

type Org = RegistryOrganization;

export class SimRegistry {
  private orgs: Org[] = [];
  private generation = 0;
  private serial = 0;
  private readonly exports = new Map<string, { orgs: Org[]; requisites: number; generation: number }>();
  /** ГИС-level answers for the next registry pages, e.g. a failure on page 2 */
  private failures: { page: number; code: string; description: string; times: number }[] = [];
  private truncations: { page: number; times: number }[] = [];
  readonly stats = { exports: 0, pages: 0 };

  constructor(private o: RegistryOptions = {}) {
    const r = prng(o.seed ?? 95796);
    for (const f of o.fixed ?? []) {
      this.orgs.push({ ogrn: f.ogrn, inn: f.inn, ...(f.kpp ? { kpp: f.kpp } : {}), name: f.name,
        requisites: [{ guid: f.guid, updatedAt: f.updatedAt, bic: f.bic, account: f.account, ...(f.corrAccount ? { corrAccount: f.corrAccount } : {}),
          bankName: f.bankName, capitalRepair: f.capitalRepair }] });
    }
    const n = o.organizations ?? 20_000;
    for (let i = 0; i < n; i++) this.orgs.push(this.makeOrg(r, new Date(Date.UTC(2025, 0, 1) + Math.floor(r() * 300) * 86_400_000)));
  }

  /** how many exports the registry has been through (each new export changes it) */
  get generationNo(): number {
    return this.generation;
  }

  failPage(page: number, code = 'EXP001000', description = 'Внутренняя ошибка, повторите запрос', times = 1): void {
    this.failures.push({ page, code, description, times });
  }

  /** the next answer of this page silently lacks its last organisation (a partial download the totals give away) */
  truncatePage(page: number, times = 1): void {
    this.truncations.push({ page, times });
  }

  private makeOrg(r: () => number, at: Date): Org {
    this.serial++;
    const inn = withInnCheck(String(7700000000 + Math.floor(r() * 99_999_999)).slice(0, 9));
    const kind = KINDS[Math.floor(r() * KINDS.length)]!;
    const name = `${kind} ${WORDS[Math.floor(r() * WORDS.length)]}-${this.serial}"`;
    const n = 1 + (r() < 0.35 ? 1 : 0) + (r() < 0.1 ? 1 : 0);
    const reqs: Org['requisites'] = [];
    for (let j = 0; j < n; j++) reqs.push(this.makeRequisite(r, at, j === 1 && r() < 0.6));
    return { ogrn: withOgrnCheck('1' + digits(r, 11)), inn, kpp: inn.slice(0, 4) + '01001', name, requisites: reqs };
  }

  private makeRequisite(r: () => number, at: Date, capitalRepair: boolean): Org['requisites'][number] {
    const bank = BANKS[Math.floor(r() * BANKS.length)]!;
    const q: Org['requisites'][number] = {
      guid: uuid(r), updatedAt: at.toISOString().replace('.000Z', '+00:00'), bic: bank.bic,
      account: account(r, capitalRepair ? '40604810' : r() < 0.5 ? '40702810' : '40703810', bank.bic), corrAccount: bank.corr,
      bankName: bank.name, capitalRepair,
    };
    if (r() < 0.03) { q.kbk = '18210102010011000110'; q.oktmo = '45' + digits(r, 6); }
    return q;
  }

  /** a new export sees the registry one step later: added, changed and removed requisites */
  private advance(): void {
    this.generation++;
    if (this.generation === 1) return;
    const r = prng((this.o.seed ?? 95796) * 31 + this.generation);
    const at = new Date();
    const fixed = (this.o.fixed ?? []).length;
    const pick = () => fixed + Math.floor(r() * (this.orgs.length - fixed));
    const count = (rate: number) => Math.max(1, Math.round((this.orgs.length - fixed) * rate));
    if (this.orgs.length > fixed) {
      for (let i = 0; i < count(this.o.removeRate ?? 0.005); i++) this.orgs.splice(pick(), 1);
      for (let i = 0; i < count(this.o.changeRate ?? 0.01) && this.orgs.length > fixed; i++) {
        const k = pick();
        const o = this.orgs[k]!;
        const q = o.requisites.map((x) => ({ ...x }));
        const j = Math.floor(r() * q.length);
        q[j] = { ...q[j]!, bankName: `${q[j]!.bankName.replace(/ \(изм\. \d+\)$/, '')} (изм. ${this.generation})`, updatedAt: at.toISOString().replace(/\.\d+Z$/, '+00:00') };
        this.orgs[k] = { ...o, requisites: q };
      }
    }
    for (let i = 0; i < count(this.o.addRate ?? 0.005); i++) this.orgs.push(this.makeOrg(r, at));
  }

  /** answers one page request: the first page (no key) starts a new export (snapshot) */
  answer(pageSize: number, pageKey: string | undefined, newId: () => string): RegistryResponse {
    let exportId: string;
    let offset = 0;
    let pageNo = 1;
    if (!pageKey) {
      this.advance();
      exportId = newId();
      const orgs = this.orgs.slice();
      this.exports.set(exportId, { orgs, requisites: orgs.reduce((n, o) => n + o.requisites.length, 0), generation: this.generation });
      this.stats.exports++;
    } else {
      const m = /^([0-9a-f-]{36}):(\d+):(\d+)$/.exec(pageKey);
      if (!m || !this.exports.has(m[1]!)) return { error: { code: 'INT002013', description: `Неизвестный ключ страницы ${pageKey}` } };
      exportId = m[1]!;
      offset = Number(m[2]);
      pageNo = Number(m[3]);
    }
    const f = this.failures.find((x) => x.times > 0 && x.page === pageNo);
    if (f) {
      f.times--;
      return { error: { code: f.code, description: f.description } };
    }
    const ex = this.exports.get(exportId)!;
    let organizations = ex.orgs.slice(offset, offset + pageSize);
    const cut = this.truncations.find((x) => x.times > 0 && x.page === pageNo);
    if (cut) {
      cut.times--;
      organizations = organizations.slice(0, -1);
    }
    const next = offset + pageSize < ex.orgs.length ? `${exportId}:${offset + pageSize}:${pageNo + 1}` : undefined;
    this.stats.pages++;
    const page: RegistryPage = { exportId, pageNumber: pageNo, totalOrganizations: ex.orgs.length, totalRequisites: ex.requisites, organizations };
    if (next) page.nextPageKey = next;
    else this.exports.delete(exportId);
    return { page };
  }

  private keyCache?: { generation: number; orgs: number; keys: Set<string> };

  /** whether ГИС knows these requisites (the current registry) */
  has(bic: string, account: string): boolean {
    if (!this.keyCache || this.keyCache.generation !== this.generation || this.keyCache.orgs !== this.orgs.length) {
      this.keyCache = { generation: this.generation, orgs: this.orgs.length, keys: this.keys() };
    }
    return this.keyCache.keys.has(`${bic}/${account}`);
  }

  /** the current registry (next export's base), flattened: what ГИС uses to decide about notifications */
  keys(): Set<string> {
    const s = new Set<string>();
    for (const o of this.orgs) for (const q of o.requisites) s.add(`${q.bic}/${q.account}`);
    return s;
  }
}
