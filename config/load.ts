import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ZodError } from 'zod';
import { configSchema, type BusConfig } from './schema.ts';

export class ConfigError extends Error {
  constructor(readonly problems: string[], source: string) {
    super(`configuration ${source} is not valid:\n` + problems.map((p) => `  - ${p}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: BusConfig;
  /** directory paths in the config are relative to */
  baseDir: string;
  file: string;
}

/** GKH_SMEV_TIMEOUT_MS ← smev.timeoutMs; GKH_BROKER_RETRY_DELAYS ← broker.retryDelays (comma list). */
export function envName(path: string[]): string {
  return 'GKH_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

const KNOWN_ENV = new Set(['GKH_CONFIG']);

function leafPaths(shape: unknown, prefix: string[] = []): string[][] {
  // walk the zod schema: objects recurse, anything else is a leaf
  const def = (shape as { _def?: { typeName?: string; innerType?: unknown; schema?: unknown; shape?: () => Record<string, unknown> } })._def;
  if (!def) return [prefix];
  if (def.typeName === 'ZodDefault' || def.typeName === 'ZodOptional' || def.typeName === 'ZodEffects') {
    return leafPaths(def.innerType ?? def.schema, prefix);
  }
  if (def.typeName === 'ZodObject' && def.shape) {
    const s = def.shape();
    return Object.keys(s).flatMap((k) => leafPaths(s[k], [...prefix, k]));
  }
  return [prefix];
}

function coerce(raw: string, path: string[]): unknown {
  const last = path[path.length - 1];
  if (['retryDelays', 'trust'].includes(last)) return raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (/^\d+$/.test(raw) && !['bankBic', 'token', 'prefix'].includes(last)) return Number(raw);
  return raw;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = value;
}

export function formatZodError(e: ZodError, env: Map<string, string>): string[] {
  return e.issues.map((i) => {
    const key = i.path.join('.');
    const fromEnv = env.get(key);
    const where = fromEnv ? `${key} (from ${fromEnv})` : key || '(top level)';
    if (i.code === 'unrecognized_keys') return `${where}: unknown setting(s) ${i.keys.join(', ')} — check the spelling`;
    if (i.code === 'invalid_type' && i.received === 'undefined') return `${where}: is required but missing`;
    return `${where}: ${i.message}`;
  });
}

/**
 * Reads the YAML config, applies GKH_* environment overrides, validates, and resolves relative paths
 * against the config file's directory. Errors name the setting and, for overrides, the variable.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, overrides: Record<string, unknown> = {}): LoadedConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read ${path}: ${(e as Error).message}`], path);
  }
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(text) ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError([`YAML syntax: ${(e as Error).message}`], path);
  }
  const fromEnv = new Map<string, string>();
  const names = new Map(leafPaths(configSchema).map((p) => [envName(p), p]));
  const problems: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith('GKH_') || v === undefined || KNOWN_ENV.has(k)) continue;
    const p = names.get(k);
    if (!p) {
      problems.push(`${k}: unknown environment override (known: ${[...names.keys()].join(', ')})`);
      continue;
    }
    setPath(doc, p, coerce(v, p));
    fromEnv.set(p.join('.'), k);
  }
  for (const [k, v] of Object.entries(overrides)) setPath(doc, k.split('.'), v);
  if (problems.length) throw new ConfigError(problems, path);
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) throw new ConfigError(formatZodError(parsed.error, fromEnv), path);
  const baseDir = dirname(path);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const c = parsed.data;
  for (const k of ['path', 'processing', 'archive', 'quarantine'] as const) c.inbox[k] = abs(c.inbox[k]);
  c.csvLayouts = abs(c.csvLayouts);
  if (c.payees.file) c.payees.file = abs(c.payees.file);
  if (c.payees.outbox) c.payees.outbox = abs(c.payees.outbox);
  c.smev.key = abs(c.smev.key);
  c.smev.cert = abs(c.smev.cert);
  c.smev.trust = c.smev.trust.map(abs);
  return { config: c, baseDir, file: path };
}
