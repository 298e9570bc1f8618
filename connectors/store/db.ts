import pg from 'pg';
import { Sequelize, QueryTypes, type Transaction } from 'sequelize';
import type { Logger } from '../log.ts';
import { migrations } from './migrations.ts';

// bigint columns (ids, kopecks) come back as numbers; amounts are checked to be safe integers on intake
pg.types.setTypeParser(20, (v: string) => Number(v));
pg.types.setTypeParser(1082, (v: string) => v); // date: keep 'YYYY-MM-DD', never shift by time zone

export interface Store {
  sequelize: Sequelize;
  query<T = Record<string, unknown>>(sql: string, bind?: unknown[] | Record<string, unknown>, tx?: Transaction): Promise<T[]>;
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

function dbName(url: string): { name: string; adminUrl: string } {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`database name "${name}" in ${url}: use letters, digits, "_" or "-"`);
  u.pathname = '/postgres';
  return { name, adminUrl: u.toString() };
}

/** Creates the database named in the URL if it does not exist yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const { name, adminUrl } = dbName(url);
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (r.rowCount === 0) {
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } catch (e) {
        if ((e as { code?: string }).code !== '42P04') throw e; // created concurrently
      }
    }
  } finally {
    await c.end();
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const { name, adminUrl } = dbName(url);
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

export async function openStore(url: string, opts: { pool?: number; log?: Logger } = {}): Promise<Store> {
  await ensureDatabase(url);
  const sequelize = new Sequelize(url, {
    dialect: 'postgres',
    logging: false,
    pool: { max: opts.pool ?? 10, min: 0, acquire: 60_000, idle: 10_000 },
    dialectOptions: { application_name: 'gkh-bus' },
  });
  await sequelize.authenticate();
  const store: Store = {
    sequelize,
    query: async <T>(sql: string, bind?: unknown[] | Record<string, unknown>, tx?: Transaction) =>
      (await sequelize.query(sql, { bind: bind as never, type: QueryTypes.RAW, transaction: tx, raw: true }))[0] as T[],
    transaction: (fn) => sequelize.transaction((tx) => fn(tx)),
    close: () => sequelize.close(),
  };
  await migrate(store, opts.log);
  return store;
}

const MIGRATION_LOCK = 4_711_001;

export async function migrate(store: Store, log?: Logger): Promise<void> {
  await store.transaction(async (tx) => {
    await store.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK], tx);
    await store.query('CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())', [], tx);
    const done = new Set((await store.query<{ id: string }>('SELECT id FROM schema_migrations', [], tx)).map((r) => r.id));
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      await store.sequelize.query(m.sql, { transaction: tx });
      await store.query('INSERT INTO schema_migrations (id) VALUES ($1)', [m.id], tx);
      log?.info('migration applied', { migration: m.id });
    }
  });
}
