/**
 * CSV layout profiles are CONFIGURATION (config/csv-layouts.yaml), validated with this zod schema.
 * A profile says how to recognise a file, how to decode and split it, where file-level values (payee, date,
 * totals) live, how to map data-row fields and how to reconcile the totals. See input-formats §4.
 */
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';

/**
 * Where a value comes from:
 * - `col:N`    — N-th field of the data row (1-based, as in input-formats §4.2 "Pos");
 * - `header:X` — the column whose header-row name is X (layouts with a column header row);
 * - `tag:KEY`  — a `KEY:value` field anywhere in the data row (tagged layouts, e.g. `CLIENTNO:0012401`);
 * - `meta:KEY` — a file-level value from the tagged header line (`HEADER;KEY:value;…`) or a `#KEY value` line.
 */
export const fieldRefSchema = z
  .string()
  .regex(/^(col:[1-9]\d*|header:.+|tag:.+|meta:.+)$/, 'field reference must be col:N, header:NAME, tag:KEY or meta:KEY');
export type FieldRef = z.infer<typeof fieldRefSchema>;

const regexSource = z.string().superRefine((s, ctx) => {
  try {
    new RegExp(s, 'u');
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid regular expression: ${(e as Error).message}` });
  }
});

export const moneyFormatSchema = z
  .object({
    /** decimal separator of rubles amounts; 'any' accepts one `.` or `,` */
    decimal: z.enum(['.', ',', 'any']).default('any'),
    /** whether the column holds rubles (with up to 2 decimals) or integer kopecks */
    unit: z.enum(['rubles', 'kopecks']).default('rubles'),
  })
  .strict();
export type MoneyFormat = z.infer<typeof moneyFormatSchema>;

const fieldsSchema = z
  .object({
    amount: fieldRefSchema,
    date: fieldRefSchema,
    time: fieldRefSchema.optional(),
    /** bank operation number: the row identity (sourceKey, duplicate check) */
    operationNo: fieldRefSchema,
    payerName: fieldRefSchema.optional(),
    purpose: fieldRefSchema.optional(),
    payeeInn: fieldRefSchema.optional(),
    payeeKpp: fieldRefSchema.optional(),
    payeeBic: fieldRefSchema,
    payeeAccount: fieldRefSchema,
    payeeName: fieldRefSchema.optional(),
    /** лицевой счёт */
    accountNumber: fieldRefSchema.optional(),
    /** ЕЛС column */
    els: fieldRefSchema.optional(),
    /** ИЖКУ column */
    serviceId: fieldRefSchema.optional(),
    /** ИПД column */
    paymentDocumentId: fieldRefSchema.optional(),
    /** a column/tag that may hold any ЖКУ id or the payee's own document number (e.g. CLIENTDOCNO) */
    idField: fieldRefSchema.optional(),
    /** period column (MMYYYY or MM.YYYY) */
    period: fieldRefSchema.optional(),
    address: fieldRefSchema.optional(),
    fiasHouseGuid: fieldRefSchema.optional(),
    fee: fieldRefSchema.optional(),
  })
  .strict();

export const csvLayoutSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    description: z.string().optional(),
    /** 'auto' = input-formats §4.7 (BOM → UTF-8; valid UTF-8 with non-ASCII → UTF-8; else singleByteEncoding) */
    encoding: z.enum(['auto', 'windows-1251', 'utf-8', 'cp866', 'koi8-r']).default('auto'),
    singleByteEncoding: z.enum(['windows-1251', 'cp866', 'koi8-r']).default('windows-1251'),
    delimiter: z.string().length(1).default(';'),
    /** rfc4180: `"` quoting with doubled inner quotes; none: quotes are ordinary characters */
    quoting: z.enum(['rfc4180', 'none']).default('rfc4180'),
    /** tolerate `Петров "Дом"` inside unquoted fields (rfc4180 only) */
    relaxQuotes: z.boolean().default(false),
    /** every line ends with the delimiter: drop the phantom empty last field */
    trailingDelimiter: z.boolean().default(false),
    /** csv-parse max_record_size (characters); bounds the damage of an unclosed quote */
    maxRecordSize: z.number().int().positive().default(65536),
    recognise: z
      .object({
        /** regex the first non-empty line (after the BOM) must match */
        firstLine: regexSource.optional(),
        /** the column header row (first non-meta line) must be exactly these names, in order */
        headerRow: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .refine((r) => r.firstLine !== undefined || r.headerRow !== undefined, 'recognise needs firstLine and/or headerRow'),
    /** file-level values, addressed by `meta:KEY` */
    meta: z
      .object({
        /** a line (matched by regex) of `KEY<separator>value` fields, e.g. `HEADER;REESTR:0157;DATE:05/11/2025;…` */
        taggedLine: z.object({ match: regexSource, separator: z.string().min(1).default(':') }).strict().optional(),
        /** lines starting with `prefix` at column 1: `#KEY value` (a prefix elsewhere in a line is data) */
        prefixLines: z.object({ prefix: z.string().min(1), separator: z.string().min(1).default(' ') }).strict().optional(),
      })
      .strict()
      .default({}),
    data: z
      .object({
        /** exact number of fields of a data row (wrong count → CSV_MALFORMED) */
        fieldCount: z.number().int().positive().optional(),
        /** minimum number of fields (layouts with optional trailing tags) */
        minFields: z.number().int().positive().optional(),
        /** lines without this tag are not data (skipped with a warning), e.g. CLIENTNO */
        requireTag: z.string().optional(),
        /** `KEY<sep>value` separator of tags in data rows */
        tagSeparator: z.string().min(1).default(':'),
        /** 1-based column from which `KEY:value` tags may appear */
        tagsFrom: z.number().int().positive().default(1),
      })
      .strict()
      .default({}),
    fields: fieldsSchema,
    amountFormat: moneyFormatSchema.default({}),
    dateFormat: z.enum(['dd/mm/yyyy', 'dd.mm.yyyy', 'yyyy-mm-dd']),
    /** totals line(s) after the data: recognised by regex on the raw line, excluded from payments, reconciled */
    totals: z
      .object({
        /** regex on the raw line; may capture named groups `count` and `sum` */
        line: regexSource,
        /** field refs into the totals record when the regex has no named groups */
        countField: fieldRefSchema.optional(),
        sumField: fieldRefSchema.optional(),
        required: z.boolean().default(false),
        format: moneyFormatSchema.optional(),
      })
      .strict()
      .optional(),
    /** file-level totals in meta values, e.g. sum: FILESUM (from `#FILESUM 14692.60`) */
    metaTotals: z
      .object({ count: z.string().optional(), sum: z.string().optional(), format: moneyFormatSchema.optional() })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((l, ctx) => {
    const refs = Object.values(l.fields).filter((v): v is string => typeof v === 'string');
    if (refs.some((r) => r.startsWith('header:')) && !l.recognise.headerRow) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `layout ${l.name}: header:… references need recognise.headerRow` });
    }
    for (const r of refs.filter((r) => r.startsWith('header:'))) {
      if (l.recognise.headerRow && !l.recognise.headerRow.includes(r.slice(7))) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `layout ${l.name}: ${r} is not in recognise.headerRow` });
      }
    }
    if (refs.some((r) => r.startsWith('meta:')) && !l.meta.taggedLine && !l.meta.prefixLines) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `layout ${l.name}: meta:… references need meta.taggedLine or meta.prefixLines` });
    }
  });

export type CsvLayout = z.infer<typeof csvLayoutSchema>;
export type CsvLayoutInput = z.input<typeof csvLayoutSchema>;

export const csvLayoutsSchema = z.array(csvLayoutSchema).superRefine((ls, ctx) => {
  const names = new Set<string>();
  for (const l of ls) {
    if (names.has(l.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `duplicate layout name ${l.name}` });
    names.add(l.name);
  }
});

/** Parse + validate the YAML text of config/csv-layouts.yaml (pure; the caller reads the file). */
export function loadCsvLayouts(yamlText: string): CsvLayout[] {
  return csvLayoutsSchema.parse(parseYaml(yamlText));
}
