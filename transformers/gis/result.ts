/**
 * ГИС import result (common ImportResultType, gis-zhkh.md §2.2) for the payments bundle. Pure.
 *
 * Built form (simulator):
 *   <ns2:ImportNotificationsOfOrderExecutionResponse xmlns="…/common/1.0.0" xmlns:ns2="…/payments/1.0.0">
 *     <result>+ { <transport-id/>, <success>{<id/>?, <update-date/>?} | <error>+ {<error-code/>, <description/>} }
 *   | <error>{<error-code/>, <description/>}
 *
 * Parsing is lenient: elements are matched by local name in any urn:dom.gosuslugi.ru/common/* namespace
 * (or payments/*), with any prefixes; unknown elements are ignored; the root may be any element.
 */
import { child, childElements, escapeText, parseXml, text } from '../smev/xml.ts';
import { GIS_PAYMENTS_1_0_0, isGisNs, type GisPaymentsBundle } from './namespaces.ts';

export interface ImportItemResult {
  transportId: string;
  success?: { id: string; updateDate: string };
  errors?: { code: string; description: string }[];
}

export type ImportResult =
  | { results: ImportItemResult[] }
  | { packetError: { code: string; description: string } };

export class ImportResultError extends Error {
  override name = 'ImportResultError';
}

function errorXml(code: string, description: string): string {
  return `<error><error-code>${escapeText(code)}</error-code><description>${escapeText(description)}</description></error>`;
}

export function buildImportResult(r: ImportResult, bundle: GisPaymentsBundle = GIS_PAYMENTS_1_0_0): string {
  const root = bundle.responseRoot;
  let x = `<ns2:${root} xmlns="${bundle.common}" xmlns:ns2="${bundle.payments}">`;
  if ('packetError' in r) {
    x += errorXml(r.packetError.code, r.packetError.description);
  } else {
    if (!r.results.length) throw new ImportResultError('results must not be empty (use packetError)');
    for (const it of r.results) {
      const hasErr = !!it.errors?.length;
      if (!!it.success === hasErr) throw new ImportResultError(`result ${it.transportId}: exactly one of success / errors`);
      x += `<result><transport-id>${escapeText(it.transportId)}</transport-id>`;
      if (it.success) {
        x += `<success>`;
        if (it.success.id) x += `<id>${escapeText(it.success.id)}</id>`;
        if (it.success.updateDate) x += `<update-date>${escapeText(it.success.updateDate)}</update-date>`;
        x += `</success>`;
      } else {
        for (const e of it.errors!) x += errorXml(e.code, e.description);
      }
      x += `</result>`;
    }
  }
  return x + `</ns2:${root}>`;
}

const C = (ns: string | null) => isGisNs(ns, 'common') || isGisNs(ns, 'payments');

function parseError(e: Element): { code: string; description: string } {
  return {
    code: text(child(e, C, 'error-code'))?.trim() ?? '',
    description: text(child(e, C, 'description')) ?? '',
  };
}

/** Parses an import result; throws ImportResultError if neither results nor a packet error is found. */
/** `xml`: the result's text, or its element already parsed (e.g. contentElement of a GetResponse). */
export function parseImportResult(xml: string | Element): ImportResult {
  let root: Element = typeof xml === 'string' ? parseXml(xml).documentElement! : xml;
  // tolerate a wrapper (e.g. an extra element around the result) by searching one level down
  const hasDirect = childElements(root).some((c) => C(c.namespaceURI) && (c.localName === 'result' || c.localName === 'error'));
  if (!hasDirect) {
    const inner = childElements(root).find((c) =>
      childElements(c).some((g) => C(g.namespaceURI) && (g.localName === 'result' || g.localName === 'error')),
    );
    if (inner) root = inner;
  }
  const results: ImportItemResult[] = [];
  let packetError: { code: string; description: string } | undefined;
  for (const c of childElements(root)) {
    if (!C(c.namespaceURI)) continue;
    if (c.localName === 'error') packetError ??= parseError(c);
    else if (c.localName === 'result') {
      const item: ImportItemResult = { transportId: text(child(c, C, 'transport-id'))?.trim() ?? '' };
      const s = child(c, C, 'success');
      if (s) {
        item.success = {
          id: text(child(s, C, 'id'))?.trim() ?? '',
          updateDate: text(child(s, C, 'update-date'))?.trim() ?? '',
        };
      }
      const errs = childElements(c).filter((e) => e.localName === 'error' && C(e.namespaceURI));
      if (errs.length) item.errors = errs.map(parseError);
      results.push(item);
    }
  }
  if (results.length) return { results };
  if (packetError) return { packetError };
  throw new ImportResultError(`no result or error in {${root.namespaceURI}}${root.localName}`);
}
