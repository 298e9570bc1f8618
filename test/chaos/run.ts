/**
 * The chaos suite: `npm run test:chaos [-- --only a,b] [-- --skip a,b] [-- --no-restarts]`.
 * Every scenario gets a fresh bus (a child process), database, queue prefix, folders and simulator, does
 * something nasty while files flow, waits for the bus to settle and runs the invariant checker.
 * Prints one line per scenario and `chaos: N scenarios, lost=X, duplicates=Y`; exits 1 if any invariant fails.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../connectors/amqp/broker.ts';
import { ChaosEnv, publishRaw } from './env.ts';
import { check, makeFile, settled, type InputPayment } from './invariants.ts';

interface Ctx {
  env: ChaosEnv;
  inputs: InputPayment[];
  /** drops a generated file of n reportable payments (+1 skipped) */
  drop(name: string, n: number): string;
  expectParked: number;
  note: string[];
}

interface Scenario {
  name: string;
  /** what it proves */
  what: string;
  /** restarts a shared service (RabbitMQ or PostgreSQL) */
  restart?: boolean;
  env?: ConstructorParameters<typeof ChaosEnv>[1];
  /** false: the scenario starts the bus itself */
  startBus?: boolean;
  run(c: Ctx): Promise<void>;
}

const until = async (what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 60_000, stepMs = 20) => {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
};
const count = async (c: Ctx, sql: string) => (await c.env.query<{ n: number }>(sql))[0]!.n;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });

/** Closes the bus's RabbitMQ connections by their connection name (`gkh-bus <prefix>`), nobody else's. */
function closeBrokerConnections(prefix: string): number {
  const out = sh('rabbitmqctl', ['-q', 'list_connections', 'pid', 'client_properties']);
  let n = 0;
  for (const line of out.split('\n')) {
    if (!line.includes(`gkh-bus ${prefix}`)) continue;
    const pid = /^(<[^>]+>)/.exec(line.trim())?.[1];
    if (!pid) continue;
    try { sh('rabbitmqctl', ['-q', 'close_connection', pid, 'chaos: connection closed']); n++; } catch { /* already gone */ }
  }
  return n;
}

function pgCluster(): string {
  return readdirSync('/etc/postgresql').sort().at(-1)!;
}

const scenarios: Scenario[] = [
  {
    name: 'baseline', what: 'no fault: the checker itself sees a clean run',
    async run(c) { c.drop('base-1.csv', 30); c.drop('base-2.csv', 15); },
  },
  {
    name: 'kill9-mid-file', what: 'kill -9 while a file is being taken in (claimed in processing/, not committed)',
    env: { batchMaxItems: 100 },
    async run(c) {
      c.drop('big.csv', 400);
      await until('the file to be claimed', () => readdirSync(c.env.processing).length > 0, 30_000, 5);
      await c.env.kill9();
      c.note.push(`killed with ${await count(c, 'SELECT count(*)::int AS n FROM payments')} payments stored`);
      await c.env.startBus();
    },
  },
  {
    name: 'kill9-mid-batch', what: 'kill -9 while packets are being built and announced',
    env: { batchMaxItems: 50 },
    async run(c) {
      c.drop('batch.csv', 250);
      await until('the first packet', async () => (await count(c, 'SELECT count(*)::int AS n FROM packets')) > 0, 30_000, 5);
      await c.env.kill9();
      c.note.push(`killed after ${await count(c, 'SELECT count(*)::int AS n FROM packets')} packet(s)`);
      await c.env.startBus();
    },
  },
  {
    name: 'kill9-after-send', what: 'kill -9 right after SMEV took a SendRequest, before the bus committed SENT (→ MessageIsAlreadySent)',
    async run(c) {
      let killed = 0;
      c.env.sim.onSendRequestTaken = () => { if (killed++ === 0) c.env.bus?.kill('SIGKILL'); };
      c.drop('send.csv', 50);
      await until('the kill', () => killed > 0 && !c.env.bus, 30_000);
      await c.env.busExit;
      c.env.sim.onSendRequestTaken = undefined;
      await c.env.startBus();
    },
  },
  {
    name: 'sigterm-drain', what: 'SIGTERM mid-flow: the bus drains, exits 0, and the next start finishes the work',
    async run(c) {
      c.drop('drain.csv', 150);
      await until('the first packet', async () => (await count(c, 'SELECT count(*)::int AS n FROM packets')) > 0, 30_000, 5);
      const code = await c.env.sigterm();
      if (code !== 0) throw new Error(`bus exited ${code} after SIGTERM`);
      await c.env.startBus();
    },
  },
  {
    name: 'broker-connections-closed', what: 'the broker closes the bus\'s connections mid-flow (twice): reconnect, re-declare, resume, republish',
    async run(c) {
      c.drop('conn-1.csv', 100);
      await until('payments stored', async () => (await count(c, 'SELECT count(*)::int AS n FROM payments')) > 0, 30_000);
      await sleep(200);
      let n = closeBrokerConnections(c.env.prefix);
      c.drop('conn-2.csv', 50);
      await until('a packet sent', async () => (await count(c, `SELECT count(*)::int AS n FROM packets WHERE status <> 'BUILT'`)) > 0, 30_000);
      n += closeBrokerConnections(c.env.prefix);
      c.note.push(`${n} connection(s) closed`);
      if (n < 2) throw new Error(`expected to close the bus's connection twice, closed ${n}`);
    },
  },
  {
    name: 'broker-restart', restart: true, what: 'RabbitMQ application stopped for 5 s and started again mid-flow',
    async run(c) {
      c.drop('mq-1.csv', 100);
      await until('payments stored', async () => (await count(c, 'SELECT count(*)::int AS n FROM payments')) > 0, 30_000);
      sh('rabbitmqctl', ['-q', 'stop_app']);
      try {
        c.drop('mq-2.csv', 50); // a file arrives while the broker is down
        await sleep(5000);
      } finally {
        sh('rabbitmqctl', ['-q', 'start_app']);
        sh('rabbitmqctl', ['-q', 'await_startup']);
      }
    },
  },
  {
    name: 'db-backends-terminated', what: 'every PostgreSQL backend of the bus terminated, three times mid-flow',
    async run(c) {
      c.drop('pg-1.csv', 150);
      let killed = 0;
      for (let i = 0; i < 3; i++) {
        await sleep(i === 0 ? 700 : 1200);
        if (i === 1) c.drop('pg-2.csv', 30);
        const r = await c.env.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'gkh-bus' AND pid <> pg_backend_pid()`,
          [c.env.dbName]);
        killed += r[0]!.n;
      }
      c.note.push(`${killed} backend(s) terminated`);
      if (!killed) throw new Error('no backend of the bus was terminated');
    },
  },
  {
    name: 'db-restart', restart: true, what: 'PostgreSQL restarted mid-flow',
    async run(c) {
      c.drop('pgr-1.csv', 150);
      await until('payments stored', async () => (await count(c, 'SELECT count(*)::int AS n FROM payments')) > 0, 30_000);
      sh('pg_ctlcluster', ['--skip-systemctl-redirect', pgCluster(), 'main', 'restart']);
      c.drop('pgr-2.csv', 40);
    },
  },
  {
    name: 'smev-down', what: 'the SMEV endpoint is down for 6 s (connection refused) while packets are sent',
    async run(c) {
      c.drop('down.csv', 60);
      await until('a packet built', async () => (await count(c, 'SELECT count(*)::int AS n FROM packets')) > 0, 30_000, 5);
      await c.env.sim.stop();
      await sleep(6000);
      await c.env.sim.start();
    },
  },
  {
    name: 'smev-5xx', what: 'SMEV answers HTTP 503 (no SOAP fault) several times',
    async run(c) {
      c.env.sim.inject({ operation: 'SendRequest', http: 503, times: 4 });
      c.env.sim.inject({ operation: 'GetResponse', http: 503, times: 3 });
      c.drop('5xx.csv', 60);
    },
  },
  {
    name: 'smev-timeout', what: 'SMEV takes longer than smev.timeoutMs (it still takes the message): retried, MessageIsAlreadySent',
    env: { smevTimeoutMs: 6000 },
    async run(c) {
      c.env.sim.inject({ operation: 'SendRequest', http: { delayMs: 9000 }, times: 2 });
      c.drop('slow-smev.csv', 40);
    },
  },
  {
    name: 'smev-disconnect-after-accept', what: 'SMEV takes the message and closes the connection before answering (→ MessageIsAlreadySent)',
    async run(c) {
      c.env.sim.inject({ operation: 'SendRequest', http: 'disconnect-after-commit', times: 2 });
      c.env.sim.inject({ operation: 'GetResponse', http: 'disconnect', times: 2 });
      c.drop('cut.csv', 60);
    },
  },
  {
    name: 'poison-message', what: 'garbage on both work queues is parked with its reason and blocks nothing',
    async run(c) {
      await publishRaw(c.env.topology, 'payment.reportable', Buffer.from('not json {'));
      await publishRaw(c.env.topology, 'packet.ready', Buffer.from(JSON.stringify({ packetId: 'x' })));
      await publishRaw(c.env.topology, 'packet.ready', Buffer.from(JSON.stringify({ packetId: 987654321 })));
      c.expectParked = 3;
      c.drop('after-poison.csv', 30);
    },
  },
  {
    name: 'same-file-twice', what: 'the same file dropped twice under its name and once under another: stored and reported once',
    async run(c) {
      const f = makeFile('twice', 40);
      c.inputs.push(...f.inputs);
      c.env.drop('twice.csv', f.content);
      await until('the first copy archived', () => existsSync(join(c.env.archive, 'twice.csv')), 30_000);
      c.env.drop('twice.csv', f.content);
      c.env.drop('twice-renamed.csv', f.content);
      await until('both copies handled', async () => (await count(c, 'SELECT count(*)::int AS n FROM files')) >= 3, 30_000);
      const dup = await count(c, `SELECT count(*)::int AS n FROM files WHERE status = 'DUPLICATE'`);
      if (dup !== 2) throw new Error(`expected 2 DUPLICATE files, got ${dup}`);
    },
  },
  {
    name: 'slow-writer', what: 'a file written slowly in place (no rename), in chunks over ~3 s: taken only when complete',
    async run(c) {
      const f = makeFile('slow', 60);
      c.inputs.push(...f.inputs);
      const path = join(c.env.inbox, 'slow.csv');
      const bytes = Buffer.from(f.content);
      const step = Math.ceil(bytes.length / 20);
      for (let i = 0; i < bytes.length; i += step) {
        appendFileSync(path, bytes.subarray(i, i + step));
        await sleep(150);
      }
    },
  },
  {
    name: 'files-while-down', startBus: false, what: 'files dropped while the bus is down (before start and after a kill -9) are all taken in',
    async run(c) {
      c.drop('before-1.csv', 30);
      c.drop('before-2.csv', 30);
      await c.env.startBus();
      await until('payments stored', async () => (await count(c, 'SELECT count(*)::int AS n FROM payments')) >= 62, 30_000);
      await c.env.kill9();
      c.drop('while-dead.csv', 30);
      await sleep(1000);
      await c.env.startBus();
    },
  },
];

async function runScenario(s: Scenario): Promise<{ ok: boolean; lost: number; duplicates: number; line: string }> {
  const started = Date.now();
  const env = new ChaosEnv(s.name, s.env);
  const inputs: InputPayment[] = [];
  const ctx: Ctx = {
    env, inputs, expectParked: 0, note: [],
    drop(name, n) {
      const f = makeFile(`${s.name}-${name.replace(/\W/g, '')}`, n);
      inputs.push(...f.inputs);
      env.drop(name, f.content);
      return name;
    },
  };
  let error: string | undefined;
  try {
    await env.startSim();
    if (s.startBus !== false) await env.startBus();
    await s.run(ctx);
    try {
      await until('the bus to settle', async () => !env.bus && env.starts > 0 ? true : settled(env, inputs), 180_000, 500);
    } catch { /* the checker says what is missing */ }
    if (!env.bus) error = `bus is not running (exit ${await env.busExit}); see ${env.logFile}`;
  } catch (e) {
    error = (e as Error).message;
  }
  let v;
  try {
    v = await check(env, inputs, { expectParked: ctx.expectParked });
  } catch (e) {
    v = { lost: inputs.length, duplicates: 0, inFlight: 0, problems: [`checker failed: ${(e as Error).message}`], accepted: 0 };
  }
  const q = readdirSync(env.quarantine).filter((n) => !n.endsWith('.error.txt'));
  if (q.length) v.problems.push(`quarantined: ${q.join(', ')}`);
  const ok = !error && v.lost === 0 && v.duplicates === 0 && v.inFlight === 0 && v.problems.length === 0;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const reportable = inputs.filter((i) => i.expect === 'ACCEPTED').length;
  let line = `${ok ? 'ok  ' : 'FAIL'} ${s.name.padEnd(30)} payments=${inputs.length} reportable=${reportable} accepted=${v.accepted} ` +
    `lost=${v.lost} duplicates=${v.duplicates} inflight=${v.inFlight} bus-starts=${env.starts} ${secs}s`;
  if (ctx.note.length) line += ` (${ctx.note.join('; ')})`;
  if (!ok) {
    line += '\n' + [error, ...v.problems.slice(0, 12)].filter(Boolean).map((p) => `       - ${p}`).join('\n');
    process.env.GKH_CHAOS_KEEP = '1';
    line += `\n       bus log: ${env.logFile}`;
  }
  if (ok) await env.close(); else await env.close().catch(() => {});
  if (!ok) delete process.env.GKH_CHAOS_KEEP;
  return { ok, lost: v.lost, duplicates: v.duplicates, line };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const opt = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1]?.split(',') : undefined; };
  const only = opt('--only'), skip = opt('--skip');
  const noRestarts = argv.includes('--no-restarts') || process.env.GKH_CHAOS_NO_RESTARTS === '1';
  if (argv.includes('--list')) {
    for (const s of scenarios) console.log(`${s.name.padEnd(30)} ${s.restart ? '[restarts a service] ' : ''}${s.what}`);
    return 0;
  }
  const chosen = scenarios.filter((s) => (!only || only.includes(s.name)) && !skip?.includes(s.name) && !(noRestarts && s.restart));
  if (!chosen.length) { console.error('no scenario selected (see --list)'); return 2; }
  let lost = 0, duplicates = 0, failed = 0;
  const started = Date.now();
  for (const s of chosen) {
    const r = await runScenario(s);
    console.log(r.line);
    lost += r.lost; duplicates += r.duplicates;
    if (!r.ok) failed++;
  }
  const summary = `chaos: ${chosen.length} scenarios, lost=${lost}, duplicates=${duplicates}` + (failed ? `, failed=${failed}` : '');
  if (process.env.GKH_CHAOS_RESULT) writeFileSync(process.env.GKH_CHAOS_RESULT, summary + '\n');
  console.log(`chaos: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(summary);
  return failed ? 1 : 0;
}

process.exitCode = await main();
