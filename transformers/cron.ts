/**
 * A 5-field cron expression (minute hour day-of-month month day-of-week), as in crontab(5): numbers, `*`,
 * ranges `a-b`, lists `a,b`, steps `*\/n` and `a-b/n`; day-of-week 0–7 (0 and 7 = Sunday); month and day names
 * (`jan`…`dec`, `sun`…`sat`); when both day fields are restricted, a day matches either (crontab rule).
 * Also `@daily`/`@midnight`, `@hourly`, `@weekly`, `@monthly`. Pure; evaluated in the time zone of the Date given
 * (local time of the process, or UTC with `utc: true`).
 */
export interface Cron {
  source: string;
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domAny: boolean;
  dowAny: boolean;
}

export class CronError extends Error {
  override name = 'CronError';
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MACROS: Record<string, string> = { '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *', '@weekly': '0 0 * * 0', '@monthly': '0 0 1 * *' };

function field(src: string, name: string, min: number, max: number, names?: string[], nameBase = 0): Set<number> {
  const out = new Set<number>();
  const num = (t: string): number => {
    const i = names?.indexOf(t.toLowerCase()) ?? -1;
    if (i >= 0) return i + nameBase;
    if (!/^\d+$/.test(t)) throw new CronError(`${name} "${t}" is not a number`);
    const n = Number(t);
    if (n < min || n > max) throw new CronError(`${name} ${n} is outside ${min}-${max}`);
    return n;
  };
  for (const part of src.split(',')) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronError(`${name} "${part}" is not a value, range or step`);
    const step = m[2] ? Number(m[2]) : 1;
    if (step < 1) throw new CronError(`${name} step must be at least 1`);
    let lo: number, hi: number;
    if (m[1] === '*') { lo = min; hi = max; }
    else if (m[1]!.includes('-')) {
      const [a, b] = m[1]!.split('-');
      lo = num(a!); hi = num(b!);
      if (lo > hi) throw new CronError(`${name} range ${m[1]} goes backwards`);
    } else {
      lo = num(m[1]!);
      hi = m[2] ? max : lo;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  const src = expr.trim();
  const parts = (MACROS[src.toLowerCase()] ?? src).split(/\s+/);
  if (parts.length !== 5) throw new CronError(`cron "${expr}" must have 5 fields (minute hour day-of-month month day-of-week), has ${parts.length}`);
  const [mi, h, dom, mo, dow] = parts as [string, string, string, string, string];
  const d = field(dow, 'day-of-week', 0, 7, DAYS);
  if (d.has(7)) { d.delete(7); d.add(0); }
  return {
    source: src, minute: field(mi, 'minute', 0, 59), hour: field(h, 'hour', 0, 23), dom: field(dom, 'day-of-month', 1, 31),
    month: field(mo, 'month', 1, 12, MONTHS, 1), dow: d, domAny: dom === '*', dowAny: dow === '*',
  };
}

export function cronMatches(c: Cron, t: Date, utc = false): boolean {
  const [mi, h, dom, mo, dow] = utc
    ? [t.getUTCMinutes(), t.getUTCHours(), t.getUTCDate(), t.getUTCMonth() + 1, t.getUTCDay()]
    : [t.getMinutes(), t.getHours(), t.getDate(), t.getMonth() + 1, t.getDay()];
  if (!c.minute.has(mi) || !c.hour.has(h) || !c.month.has(mo)) return false;
  if (c.domAny || c.dowAny) return c.dom.has(dom) && c.dow.has(dow);
  return c.dom.has(dom) || c.dow.has(dow);
}

/** The first minute strictly after `after` that matches (searched up to 5 years ahead). */
export function nextRun(c: Cron, after: Date, utc = false): Date {
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setTime(t.getTime() + 60_000);
  const end = after.getTime() + 5 * 366 * 86_400_000;
  while (t.getTime() <= end) {
    if (cronMatches(c, t, utc)) return t;
    t.setTime(t.getTime() + 60_000);
  }
  throw new CronError(`cron "${c.source}" never matches`);
}
