/**
 * The benchmark (gateway/bench.ts): its argument parsing, the bus's node options kept equal in every place that
 * starts the bus, and one small run end to end (fresh bus process, simulator, real broker and database).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUS_NODE_ARGS, parseCount, parseSize } from '../gateway/bench.ts';

const ROOT = join(import.meta.dirname, '..');

test('--payments and --big-file accept plain numbers, k/M and sizes; refuse the rest with the option named', (t) => {
  t.is(parseCount('200000'), 200_000);
  t.is(parseCount('50k'), 50_000);
  t.is(parseCount('1M'), 1_000_000);
  t.throws(() => parseCount('lots'), { message: /--payments lots: expected a number/ });
  t.throws(() => parseCount('0'), { message: /at least 1/ });
  t.is(parseSize('1GB'), 1024 ** 3);
  t.is(parseSize('300MB'), 300 * 1024 ** 2);
  t.throws(() => parseSize('big'), { message: /--big-file big/ });
});

test('the bus is started with the same node options by npm start, the Dockerfile and the benchmark', (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.is(pkg.scripts['start'], `node ${BUS_NODE_ARGS.join(' ')} bin/gkh-bus.js start`);
  t.regex(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), new RegExp(`^ENV NODE_OPTIONS=${BUS_NODE_ARGS.join(' ')}$`, 'm'));
});

test('a small run from this checkout completes, loses nothing and reports the documented fields', (t) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/gkh-bus.js'), 'bench', '--payments', '3000', '--json', '--timeout', '100'],
    { cwd: ROOT, encoding: 'utf8', timeout: 110_000, env: { ...process.env, BENCH_BUS_NODE_ARGS: undefined } });
  t.is(r.status, 0, r.stderr.slice(-2000));
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  t.is(j['complete'], true);
  t.is(j['lost'], 0);
  t.is(j['payments'], 3000);
  for (const k of ['e2eSentPerSec', 'e2eAcceptedPerSec', 'rawBrokerPerSec', 'ratioToBroker', 'peakRssMb', 'parsePaymentsPerSec', 'rawDbInsertPerSec']) {
    t.true(typeof j[k] === 'number' && (j[k] as number) > 0, `${k} = ${String(j[k])}`);
  }
  t.truthy(j['stagesMs']);
  t.truthy(j['cpuSeconds']);
});

// `--timeout abc` was read as NaN, i.e. no timeout at all, and the run went on with the default 200 000 payments
test('--timeout that is not a positive number of seconds is refused before anything starts', (t) => {
  for (const cmd of [['bench', '--timeout', 'abc'], ['bench', '--timeout', '0'], ['demo', '--timeout', '1m']]) {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/gkh-bus.js'), ...cmd], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    t.is(r.status, 2, cmd.join(' '));
    t.regex(r.stderr, new RegExp(`--timeout ${cmd[2]}: expected a number of seconds greater than 0`));
  }
});
