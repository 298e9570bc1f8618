/**
 * ГИС ЖКХ payee registry export (ВС 95796) in our provisional bundle schemas/gis/payee-registry-1.0.0. Pure.
 *
 *   <ExportPayeeRegistryRequest xmlns="urn:dom.gosuslugi.ru/payee-registry/1.0.0">
 *     <information-system-id/> <organization-id/> <page-size/> <page-key/>?
 *   <ExportPayeeRegistryResponse> <page>{export-id, page-number, total-organizations, total-requisites,
 *     organization*{ogrn, inn, kpp?, name, payment-information+}, next-page-key?} | <error>{error-code, description?}
 *
 * The registry is flattened to one PayeeRecord per payment-information (requisite set); the recipient INN/KPP/name
 * of the requisites win over the organisation's when present. Every value stays a string (leading zeros kept).
 */
import type { PayeeRecord, RecordProblem } from '../payment.ts';
import { payeeRecordProblems } from '../classify/payees.ts';
import { child, children, escapeText, parseXml, text } from '../smev/xml.ts';

export interface PayeeRegistryBundle {
  id: string;
  ns: string;
  requestRoot: string;
  responseRoot: string;
}

export const GIS_PAYEE_REGISTRY_1_0_0: PayeeRegistryBundle = {
  id: 'gis-payee-registry-1.0.0',
  ns: 'urn:dom.gosuslugi.ru/payee-registry/1.0.0',
  requestRoot: 'ExportPayeeRegistryRequest',
  responseRoot: 'ExportPayeeRegistryResponse',
};

export class RegistryXmlError extends Error {
  override name = 'RegistryXmlError';
}

export interface RegistryRequest {
  informationSystemId: string;
  organizationId: string;
  pageSize: number;
  pageKey?: string;
}

export function buildRegistryRequest(r: RegistryRequest, b: PayeeRegistryBundle = GIS_PAYEE_REGISTRY_1_0_0): string {
  let x = `<${b.requestRoot} xmlns="${b.ns}">`;
  x += `<information-system-id>${escapeText(r.informationSystemId)}</information-system-id>`;
  x += `<organization-id>${escapeText(r.organizationId)}</organization-id>`;
  x += `<page-size>${r.pageSize}</page-size>`;
  if (r.pageKey) x += `<page-key>${escapeText(r.pageKey)}</page-key>`;
  return x + `</${b.requestRoot}>`;
}

export function parseRegistryRequest(xml: string, b: PayeeRegistryBundle = GIS_PAYEE_REGISTRY_1_0_0): RegistryRequest {
  const root = parseXml(xml).documentElement;
  if (!root || root.namespaceURI !== b.ns || root.localName !== b.requestRoot) throw new RegistryXmlError(`root must be {${b.ns}}${b.requestRoot}`);
  const t = (n: string) => text(child(root, b.ns, n))?.trim();
  const out: RegistryRequest = { informationSystemId: t('information-system-id') ?? '', organizationId: t('organization-id') ?? '', pageSize: Number(t('page-size')) };
  const k = t('page-key');
  if (k) out.pageKey = k;
  return out;
}

/** One organisation as the registry carries it: several requisite sets. */
export interface RegistryOrganization {
  ogrn: string;
  inn: string;
  kpp?: string;
  name: string;
  requisites: {
    guid: string;
    updatedAt: string;
    recipientInn?: string;
    recipientKpp?: string;
    recipientName?: string;
    bic: string;
    account: string;
    corrAccount?: string;
    bankName: string;
    kbk?: string;
    oktmo?: string;
    capitalRepair: boolean;
  }[];
}

export interface RegistryPage {
  exportId: string;
  pageNumber: number;
  totalOrganizations: number;
  totalRequisites: number;
  organizations: RegistryOrganization[];
  nextPageKey?: string;
}

export type RegistryResponse = { page: RegistryPage } | { error: { code: string; description: string } };

const opt = (tag: string, v: string | undefined) => (v ? `<${tag}>${escapeText(v)}</${tag}>` : '');

export function buildRegistryResponse(r: RegistryResponse, b: PayeeRegistryBundle = GIS_PAYEE_REGISTRY_1_0_0): string {
  let x = `<${b.responseRoot} xmlns="${b.ns}">`;
  if ('error' in r) {
    x += `<error><error-code>${escapeText(r.error.code)}</error-code>${opt('description', r.error.description)}</error>`;
    return x + `</${b.responseRoot}>`;
  }
  const p = r.page;
  x += `<page><export-id>${p.exportId}</export-id><page-number>${p.pageNumber}</page-number>`;
  x += `<total-organizations>${p.totalOrganizations}</total-organizations><total-requisites>${p.totalRequisites}</total-requisites>`;
  const parts: string[] = [x];
  for (const o of p.organizations) {
    let s = `<organization><ogrn>${o.ogrn}</ogrn><inn>${o.inn}</inn>${opt('kpp', o.kpp)}<name>${escapeText(o.name)}</name>`;
    for (const q of o.requisites) {
      s += `<payment-information><guid>${q.guid}</guid><update-date>${q.updatedAt}</update-date>`;
      s += opt('recipient-inn', q.recipientInn) + opt('recipient-kpp', q.recipientKpp) + opt('recipient-name', q.recipientName);
      s += `<bank-bik>${q.bic}</bank-bik><operating-account-number>${q.account}</operating-account-number>`;
      s += opt('correspondent-bank-account', q.corrAccount) + `<bank-name>${escapeText(q.bankName)}</bank-name>`;
      s += opt('kbk', q.kbk) + opt('oktmo', q.oktmo) + (q.capitalRepair ? '<capital-repair>true</capital-repair>' : '');
      s += `</payment-information>`;
    }
    parts.push(s + `</organization>`);
  }
  parts.push(`${opt('next-page-key', p.nextPageKey)}</page></${b.responseRoot}>`);
  return parts.join('');
}

/** Parses a registry response (namespace of the bundle; unknown elements ignored). */
export function parseRegistryResponse(xml: string, b: PayeeRegistryBundle = GIS_PAYEE_REGISTRY_1_0_0): RegistryResponse {
  const root = parseXml(xml).documentElement;
  if (!root || root.namespaceURI !== b.ns || root.localName !== b.responseRoot) {
    throw new RegistryXmlError(`response root is {${root?.namespaceURI ?? ''}}${root?.localName ?? '?'}, expected {${b.ns}}${b.responseRoot}`);
  }
  const ns = b.ns;
  const t = (e: Element, n: string) => text(child(e, ns, n))?.trim() || undefined;
  const err = child(root, ns, 'error');
  if (err) return { error: { code: t(err, 'error-code') ?? '?', description: t(err, 'description') ?? '' } };
  const pg = child(root, ns, 'page');
  if (!pg) throw new RegistryXmlError('response has neither page nor error');
  const page: RegistryPage = {
    exportId: t(pg, 'export-id') ?? '',
    pageNumber: Number(t(pg, 'page-number')),
    totalOrganizations: Number(t(pg, 'total-organizations')),
    totalRequisites: Number(t(pg, 'total-requisites')),
    organizations: children(pg, ns, 'organization').map((o) => {
      const org: RegistryOrganization = {
        ogrn: t(o, 'ogrn') ?? '', inn: t(o, 'inn') ?? '', name: t(o, 'name') ?? '',
        requisites: children(o, ns, 'payment-information').map((q) => {
          const r: RegistryOrganization['requisites'][number] = {
            guid: t(q, 'guid') ?? '', updatedAt: t(q, 'update-date') ?? '', bic: t(q, 'bank-bik') ?? '',
            account: t(q, 'operating-account-number') ?? '', bankName: t(q, 'bank-name') ?? '', capitalRepair: t(q, 'capital-repair') === 'true',
          };
          for (const [k, tag] of [['recipientInn', 'recipient-inn'], ['recipientKpp', 'recipient-kpp'], ['recipientName', 'recipient-name'],
            ['corrAccount', 'correspondent-bank-account'], ['kbk', 'kbk'], ['oktmo', 'oktmo']] as const) {
            const v = t(q, tag);
            if (v) r[k] = v;
          }
          return r;
        }),
      };
      const kpp = t(o, 'kpp');
      if (kpp) org.kpp = kpp;
      return org;
    }),
  };
  const next = t(pg, 'next-page-key');
  if (next) page.nextPageKey = next;
  return { page };
}

/**
 * One PayeeRecord per requisite set, each checked like a CSV row (check digits, account key against the BIK);
 * a bad record is rejected with the organisation and requisite it concerns, never repaired.
 */
export function flattenRegistry(orgs: RegistryOrganization[], where = 'page'): { records: PayeeRecord[]; rejected: RecordProblem[] } {
  const records: PayeeRecord[] = [];
  const rejected: RecordProblem[] = [];
  orgs.forEach((o, i) => {
    o.requisites.forEach((q, j) => {
      const rec: PayeeRecord = {
        ogrn: o.ogrn, inn: q.recipientInn ?? o.inn, kpp: q.recipientKpp ?? o.kpp ?? '', name: q.recipientName ?? o.name,
        bic: q.bic, account: q.account, corrAccount: q.corrAccount ?? '', bankName: q.bankName, capitalRepair: q.capitalRepair,
        guid: q.guid, updatedAt: q.updatedAt,
      };
      if (q.kbk) rec.kbk = q.kbk;
      if (q.oktmo) rec.oktmo = q.oktmo;
      const bad = payeeRecordProblems(rec);
      if (bad.length) rejected.push({ code: 'INVALID_RECORD', location: `${where} organization[${i + 1}]/payment-information[${j + 1}]`, message: bad.join('; '), ref: `${q.bic}/${q.account}` });
      else records.push(rec);
    });
  });
  return { records, rejected };
}
