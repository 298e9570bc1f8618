/**
 * File pickup against the real services: files present at start, files left in processing/ by a crash,
 * duplicates by content across restarts, the three readiness rules (stable, done-marker, rename),
 * polling, and the bus's own folders inside the inbox never being read.
 */
import test from 'ava';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, waitFor, type Harness } from './helpers/harness.ts';
import { startBus } from '../gateway/bus.ts';
import type { BusConfig } from '../config/schema.ts';
import { sleep } from '../connectors/amqp/broker.ts';

let h: Harness;
test.before(async () => { h = await startHarness('pickup', {}, { startBus: false }); });
// the harness stops only a bus it started itself
test.after.always(async () => { await h?.bus?.stop().catch(() => {}); await h?.close(); });

async function restart(inbox: Partial<BusConfig['inbox']> = {}): Promise<BusConfig['inbox']> {
  await h.bus?.stop();
  const config: BusConfig = { ...h.config, inbox: { ...h.config.inbox, ...inbox } };
  h.bus = await startBus(config, { log: h.log });
  return config.inbox;
}

const HEADER = '\uFEFFДата;Время;Номер операции;Плательщик;ИНН получателя;БИК получателя;Счет получателя;Назначение платежа;Сумма;Комиссия\r\n';
let n = 0;
function row(): string {
  const op = `K-${process.pid}-${++n}`;
  return `06.11.2025;10:15:02;${op};Соколов Н.В.;9909630905;044599202;40702810502000012345;"Оплата ЖКУ; ИПД 90МН700101-01-1025; 10.2025";43,${String(n % 100).padStart(2, '0')};0,00\r\n`;
}
const csv = (rows = 1) => HEADER + Array.from({ length: rows }, row).join('');

type FileRow = { id: number; name: string; status: string; payments_added: number; duplicate_of: number | null };
const files = (name: string) => h.bus.store.query<FileRow>('SELECT id, name, status, payments_added, duplicate_of FROM files WHERE name = $1 ORDER BY id', [name]);
const fileCount = async () => (await h.bus.store.query<{ n: number }>('SELECT count(*)::int AS n FROM files'))[0].n;
const recorded = (name: string, timeoutMs = 20_000) => waitFor(async () => (await files(name))[0], timeoutMs, `file ${name} recorded`);
const archived = (dir: string, name: string) => waitFor(async () => existsSync(join(dir, name)), 10_000, `${name} in ${dir}`);

test.serial('files dropped while the bus is down, and a file left in processing/ by a crash, are processed at start', async (t) => {
  const inbox = h.config.inbox;
  mkdirSync(inbox.path, { recursive: true });
  mkdirSync(inbox.processing, { recursive: true });
  writeFileSync(join(inbox.path, 'down-1.csv'), csv(2));
  writeFileSync(join(inbox.processing, '1764800000000-crashed-1.csv'), csv(1)); // claimed, never recorded
  await restart();
  t.like(await recorded('down-1.csv'), { status: 'ACCEPTED', payments_added: 2 });
  t.like(await recorded('crashed-1.csv'), { status: 'ACCEPTED', payments_added: 1 });
  await archived(inbox.archive, 'down-1.csv');
  await archived(inbox.archive, 'crashed-1.csv');
  t.deepEqual(readdirSync(inbox.processing), []);
  t.is(h.bus.inbox!.recovered, 1);
});

test.serial('the same bytes after a restart are a DUPLICATE; a recorded file left in processing/ is only moved on', async (t) => {
  const inbox = await restart();
  const bytes = readFileSync(join(inbox.archive, 'down-1.csv'));
  const [orig] = await files('down-1.csv');
  writeFileSync(join(inbox.path, 'down-1-again.csv'), bytes);
  t.like(await recorded('down-1-again.csv'), { status: 'DUPLICATE', duplicate_of: orig.id, payments_added: 0 });
  // the crash came after the commit and before the move: nothing is recorded twice
  const before = await fileCount();
  await h.bus.stop();
  writeFileSync(join(inbox.processing, '1764800000001-committed.csv'), bytes);
  await restart();
  await archived(inbox.archive, 'committed.csv');
  t.is(await fileCount(), before);
  t.deepEqual(readdirSync(inbox.processing), []);
});

test.serial('stable: a file still being written is not read early', async (t) => {
  const inbox = await restart({ stableMs: 700 });
  const p = join(inbox.path, 'growing.csv');
  writeFileSync(p, HEADER + row());
  for (let i = 0; i < 7; i++) {
    await sleep(150);
    appendFileSync(p, row());
  }
  t.like(await recorded('growing.csv'), { status: 'ACCEPTED', payments_added: 8 });
});

test.serial('done-marker: a file is taken only once <name>.done appears; the marker is removed after the claim', async (t) => {
  const inbox = await restart({ readiness: 'done-marker' });
  writeFileSync(join(inbox.path, 'marked.csv'), csv(1));
  await sleep(1500);
  t.deepEqual(await files('marked.csv'), []);
  t.true(existsSync(join(inbox.path, 'marked.csv')));
  writeFileSync(join(inbox.path, 'marked.csv.done'), '');
  t.like(await recorded('marked.csv'), { status: 'ACCEPTED', payments_added: 1 });
  await archived(inbox.archive, 'marked.csv');
  t.false(existsSync(join(inbox.path, 'marked.csv.done')));
  t.deepEqual(await files('marked.csv.done'), []);
});

test.serial('rename: names matching tempPattern are never read; the final name is taken at once', async (t) => {
  const inbox = await restart({ readiness: 'rename', stableMs: 60_000 });
  const tmp = join(inbox.path, 'renamed.csv.part');
  writeFileSync(tmp, csv(1));
  await sleep(1500);
  t.deepEqual(await files('renamed.csv.part'), []);
  t.true(existsSync(tmp));
  renameSync(tmp, join(inbox.path, 'renamed.csv'));
  // taken without waiting for stableMs (60 s here)
  t.like(await recorded('renamed.csv', 10_000), { status: 'ACCEPTED', payments_added: 1 });
});

test.serial('usePolling, with processing/, archive/ and quarantine/ inside the inbox: they are never read', async (t) => {
  const root = h.config.inbox.path;
  const inbox = await restart({
    usePolling: true, pollIntervalMs: 100,
    processing: join(root, 'processing'), archive: join(root, 'archive'), quarantine: join(root, 'quarantine'),
  });
  writeFileSync(join(root, 'polled.csv'), csv(1));
  writeFileSync(join(root, 'bad.csv'), 'not a payment file\n');
  t.like(await recorded('polled.csv'), { status: 'ACCEPTED' });
  t.like(await recorded('bad.csv'), { status: 'REJECTED' });
  await archived(inbox.archive, 'polled.csv');
  await archived(inbox.quarantine, 'bad.csv.error.txt');
  const count = await fileCount();
  await sleep(6000); // past a periodic rescan (every 5 s) and many polls
  t.is(await fileCount(), count, 'nothing in archive/ or quarantine/ was taken again');
  t.true(existsSync(join(inbox.archive, 'polled.csv')));
  t.true(existsSync(join(inbox.quarantine, 'bad.csv')));
});
