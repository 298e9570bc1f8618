import test from 'ava';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError, envName } from '../config/load.ts';
import { ROOT } from './helpers/harness.ts';

const base = join(ROOT, 'config/bus.yaml');

test('the shipped config is valid; relative paths resolve against its folder', (t) => {
  const { config } = loadConfig(base, {});
  t.is(config.smev.version, '1.2');
  t.is(config.batch.maxItems, 500);
  t.is(config.broker.retryDelays[0], 10_000);
  t.true(config.inbox.path.startsWith(ROOT));
});

test('GKH_* environment variables override settings, typed', (t) => {
  const { config } = loadConfig(base, { GKH_DATABASE_URL: 'postgres://x@h:5432/other', GKH_BATCH_MAX_ITEMS: '100', GKH_BROKER_RETRY_DELAYS: '1s,2m', GKH_SMEV_TEST_MESSAGE: 'true' });
  t.is(config.database.url, 'postgres://x@h:5432/other');
  t.is(config.batch.maxItems, 100);
  t.deepEqual(config.broker.retryDelays, [1000, 120_000]);
  t.true(config.smev.testMessage);
  t.is(envName(['smev', 'timeoutMs']), 'GKH_SMEV_TIMEOUT_MS');
});

test('errors name the setting, the variable and the rule, all at once', (t) => {
  const e = t.throws(() => loadConfig(base, { GKH_BATCH_MAX_ITEMS: '501', GKH_DATABASE_URL: 'mysql://x' }), { instanceOf: ConfigError })!;
  t.regex(e.message, /batch\.maxItems \(from GKH_BATCH_MAX_ITEMS\)/);
  t.regex(e.message, /database\.url \(from GKH_DATABASE_URL\): a postgres:\/\/ URL/);
  const e2 = t.throws(() => loadConfig(base, { GKH_NO_SUCH_THING: '1' }), { instanceOf: ConfigError })!;
  t.regex(e2.message, /GKH_NO_SUCH_THING: unknown environment override/);
});

test('a typo and a missing section in YAML are reported with the path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gkh-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'bus.yaml');
  writeFileSync(f, 'database:\n  url: postgres://localhost/x\n  pol: 3\nbroker:\n  url: amqp://localhost\n');
  const e = t.throws(() => loadConfig(f, {}), { instanceOf: ConfigError })!;
  t.regex(e.message, /database: unknown setting\(s\) pol/);
  t.regex(e.message, /inbox: is required but missing/);
  t.regex(e.message, /smev: is required but missing/);
  writeFileSync(f, 'database: [unclosed');
  t.regex(t.throws(() => loadConfig(f, {}))!.message, /YAML syntax/);
  t.regex(t.throws(() => loadConfig(join(dir, 'nope.yaml'), {}))!.message, /cannot read/);
});

test('broker.retryUntil: days accepted; shorter than the tiers, or too many repeats, is refused by name', (t) => {
  const { config } = loadConfig(base, { GKH_BROKER_RETRY_DELAYS: '10s,1m,10m,30m', GKH_BROKER_RETRY_UNTIL: '2d' });
  t.is(config.broker.retryUntil, 2 * 86_400_000);
  const short = t.throws(() => loadConfig(base, { GKH_BROKER_RETRY_DELAYS: '10s,1m,10m', GKH_BROKER_RETRY_UNTIL: '5m' }), { instanceOf: ConfigError });
  t.regex(short!.message, /broker\.retryUntil \(from GKH_BROKER_RETRY_UNTIL\): must be at least the sum of retryDelays/);
  const many = t.throws(() => loadConfig(base, { GKH_BROKER_RETRY_DELAYS: '1s', GKH_BROKER_RETRY_UNTIL: '30d' }), { instanceOf: ConfigError });
  t.regex(many!.message, /broker\.retryUntil.*more than 10000 attempts/);
});

test('inbox: readiness, doneSuffix and tempPattern are validated by name', (t) => {
  const { config } = loadConfig(base, { GKH_INBOX_READINESS: 'done-marker', GKH_INBOX_DONE_SUFFIX: '.ok' });
  t.is(config.inbox.readiness, 'done-marker');
  t.is(config.inbox.doneSuffix, '.ok');
  t.is(loadConfig(base, {}).config.inbox.tempPattern, '\\.(tmp|part|partial)$|~$');
  const bad = t.throws(() => loadConfig(base, { GKH_INBOX_READINESS: 'sometimes', GKH_INBOX_ARCHIVE: '../var/inbox', GKH_INBOX_TEMP_PATTERN: '(' }), { instanceOf: ConfigError });
  t.regex(bad!.message, /inbox\.readiness \(from GKH_INBOX_READINESS\)/);
  t.regex(bad!.message, /inbox\.tempPattern \(from GKH_INBOX_TEMP_PATTERN\): a valid regular expression/);
});

test('inbox.archive equal to inbox.path is refused', (t) => {
  const e = t.throws(() => loadConfig(base, { GKH_INBOX_ARCHIVE: '../var/inbox' }), { instanceOf: ConfigError });
  t.regex(e!.message, /inbox\.archive \(from GKH_INBOX_ARCHIVE\): must be another folder than inbox\.path/);
});
