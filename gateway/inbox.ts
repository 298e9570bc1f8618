import { mkdir, readFile, rename, stat, writeFile, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Logger } from '../connectors/log.ts';
import type { FileOutcome, Intake } from '../routes/intake.ts';

export interface InboxOptions {
  path: string;
  processing: string;
  archive: string;
  quarantine: string;
  stableMs: number;
  usePolling: boolean;
  pollIntervalMs: number;
  maxFileBytes: number;
}

const IGNORED = /(^\.|\.tmp$|\.part$|\.partial$|~$|\.error\.txt$|\.problems\.txt$)/i;

/**
 * The file channel adapter: watches the inbox, waits until a file is complete (size and mtime stable),
 * claims it by renaming it into the processing folder, hands the bytes to the intake, then moves it to
 * the archive or to the quarantine with `<name>.error.txt` beside it. Files present at start are processed.
 */
export class Inbox {
  private watcher?: FSWatcher;
  private queue: string[] = [];
  private queued = new Set<string>();
  private active?: Promise<void>;
  private stopped = false;
  private rescan?: NodeJS.Timeout;
  private failures = new Map<string, number>();
  readonly outcomes: FileOutcome[] = [];
  onOutcome?: (o: FileOutcome) => void;

  constructor(private o: InboxOptions, private intake: Intake, private afterCommit: (o: FileOutcome) => Promise<void>, private log: Logger) {}

  async start(): Promise<void> {
    for (const d of [this.o.path, this.o.processing, this.o.archive, this.o.quarantine]) await mkdir(d, { recursive: true });
    // files claimed by a previous run that stopped mid-way: process them again (the intake is idempotent)
    for (const n of await readdir(this.o.processing)) await rename(join(this.o.processing, n), join(this.o.path, n.replace(/^\d+-/, ''))).catch(() => {});
    this.watcher = chokidar.watch(this.o.path, {
      depth: 0,
      ignoreInitial: false,
      usePolling: this.o.usePolling,
      interval: this.o.pollIntervalMs,
      ignored: (p: string) => p !== this.o.path && IGNORED.test(basename(p)),
    });
    this.watcher.on('add', (p) => this.enqueue(p));
    this.watcher.on('error', (e) => this.log.error('inbox watcher error', { err: e }));
    await new Promise<void>((r) => this.watcher!.once('ready', () => r()));
    // a periodic listing backs up lost events (network shares, bursts)
    this.rescan = setInterval(() => void this.scan(), Math.max(5000, this.o.stableMs * 5));
    this.rescan.unref();
  }

  private async scan(): Promise<void> {
    try {
      for (const n of await readdir(this.o.path)) if (!IGNORED.test(n)) this.enqueue(join(this.o.path, n));
    } catch (e) {
      this.log.warn('inbox scan failed', { err: e });
    }
  }

  private enqueue(path: string): void {
    if (this.stopped || this.queued.has(path)) return;
    this.queued.add(path);
    this.queue.push(path);
    this.active ??= this.drain().finally(() => (this.active = undefined));
  }

  private async drain(): Promise<void> {
    while (this.queue.length && !this.stopped) {
      const path = this.queue.shift()!;
      try {
        await this.handle(path);
      } catch (e) {
        this.log.error('file handling failed', { file: path, err: e });
      } finally {
        this.queued.delete(path);
      }
    }
  }

  /** Complete when size and mtime stay the same for stableMs. */
  private async waitStable(path: string): Promise<boolean> {
    let prev = await stat(path).catch(() => undefined);
    for (;;) {
      if (!prev || !prev.isFile()) return false;
      await new Promise((r) => setTimeout(r, this.o.stableMs));
      const cur = await stat(path).catch(() => undefined);
      if (cur && cur.size === prev.size && cur.mtimeMs === prev.mtimeMs) return true;
      prev = cur;
    }
  }

  private async handle(path: string): Promise<void> {
    if (!(await this.waitStable(path))) return;
    const name = basename(path);
    const claimed = join(this.o.processing, `${Date.now()}-${name}`);
    try {
      await rename(path, claimed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // taken by someone else
      throw e;
    }
    const flog = this.log.child({ file: name });
    try {
      await this.process(claimed, name, flog);
    } catch (e) {
      // an internal failure (database down, a bug): put the file back for a later attempt; after
      // three failures quarantine it with the error, so that it is neither lost nor retried forever
      const n = (this.failures.get(name) ?? 0) + 1;
      this.failures.set(name, n);
      if (n < 3) {
        await rename(claimed, join(this.o.path, name)).catch(() => {});
        flog.error('file processing failed; it goes back to the inbox for another attempt', { attempt: n, err: e });
        const t = setTimeout(() => this.enqueue(join(this.o.path, name)), 5000 * n);
        t.unref();
      } else {
        const target = await freeName(this.o.quarantine, name);
        await rename(claimed, target).catch(() => {});
        await writeAtomic(`${target}.error.txt`, `INTERNAL: processing failed ${n} times: ${(e as Error).message}\n`);
        flog.error('file quarantined after repeated internal failures', { attempts: n, err: e });
        this.failures.delete(name);
      }
    }
  }

  private async process(claimed: string, name: string, flog: Logger): Promise<void> {
    const size = (await stat(claimed)).size;
    let outcome: FileOutcome;
    if (size > this.o.maxFileBytes) {
      outcome = await this.intake.recordRejected(name, await sha256File(claimed), size, 'inbox',
        `FILE_TOO_LARGE: ${size} bytes exceeds inbox.maxFileBytes ${this.o.maxFileBytes}`);
    } else {
      outcome = await this.intake.processBytes(await readFile(claimed), name);
    }
    await this.afterCommit(outcome);
    if (outcome.status === 'REJECTED') {
      const target = await freeName(this.o.quarantine, name);
      await rename(claimed, target);
      await writeAtomic(`${target}.error.txt`, `${outcome.reason}\n\nfile: ${name}\nfile id: ${outcome.fileId}\nat: ${new Date().toISOString()}\n`);
      flog.warn('file quarantined', { fileId: outcome.fileId, reason: outcome.reason, to: target });
    } else {
      const target = await freeName(this.o.archive, name);
      await rename(claimed, target);
      if (outcome.status === 'DUPLICATE') await writeAtomic(`${target}.problems.txt`, `${outcome.reason}\n`);
      else if (outcome.problems.length) {
        await writeAtomic(`${target}.problems.txt`, outcome.problems.map((p) => `${p.code}\t${p.location}\t${p.ref ?? ''}\t${p.message}`).join('\n') + '\n');
      }
    }
    this.outcomes.push(outcome);
    this.onOutcome?.(outcome);
  }

  /** Stops watching and finishes the file in hand. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.rescan);
    await this.watcher?.close();
    await this.active;
  }
}

/** Readers (people, the АБС) never see a half-written note: write a temporary file, then rename. */
async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

async function freeName(dir: string, name: string): Promise<string> {
  let target = join(dir, name);
  for (let i = 1; await stat(target).then(() => true, () => false); i++) target = join(dir, `${name}.${i}`);
  return target;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (c) => h.update(c)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}
