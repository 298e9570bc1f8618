/**
 * Schema bundle constants for the provisional ГИС payments bundle (schemas/gis/payments-1.0.0).
 * Code that needs namespaces/root names takes them from a bundle object so that the official bundle
 * can be swapped in by configuration (gis-zhkh.md §12).
 */
export interface GisPaymentsBundle {
  /** bundle id, stored with every sent packet */
  id: string;
  payments: string;
  paymentsCommon: string;
  common: string;
  requestRoot: string;
  responseRoot: string;
}

export const GIS_PAYMENTS_1_0_0: GisPaymentsBundle = {
  id: 'gis-payments-1.0.0',
  payments: 'urn:dom.gosuslugi.ru/payments/1.0.0',
  paymentsCommon: 'urn:dom.gosuslugi.ru/payments-common/1.0.0',
  common: 'urn:dom.gosuslugi.ru/common/1.0.0',
  requestRoot: 'ImportNotificationsOfOrderExecutionRequest',
  responseRoot: 'ImportNotificationsOfOrderExecutionResponse',
};

/** Any ГИС ЖКХ namespace of the given family (any version), e.g. urn:dom.gosuslugi.ru/common/1.2.0. */
export function isGisNs(ns: string | null | undefined, family: string): boolean {
  return !!ns && ns.startsWith(`urn:dom.gosuslugi.ru/${family}/`);
}
