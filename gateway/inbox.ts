import { mkdir, readFile, rename, stat, writeFile, readdir, unlink } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
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
  /** when a file is complete: stable size+mtime, a `<name><doneSuffix>` marker, or a final name (write-then-rename) */
  readiness: 'stable' | 'done-marker' | 'rename';
  doneSuffix: string;
  /** regular expression of names being written (never read) */
  tempPattern: string;
  stableMs: number;
  usePolling: boolean;
  pollIntervalMs: number;
  maxFileBytes: number;
  /** PacketEPD files above this size are taken in streaming, in two passes, never read whole */
  streamAboveBytes: number;
  /** largest PacketEPD file taken in streaming */
  maxStreamedBytes: number;
}

/** hidden files and the notes the bus writes beside files */
const NOTES = /(^\.|\.error\.txt$|\.problems\.txt$)/i;

/**
 * The file channel adapter: watches the inbox, waits until a file is complete (per `readiness`: size and
 * mtime stable; a done-marker beside it; or a final name after write-then-rename), claims it by renaming
 * it into the processing folder, hands the bytes to the intake, then moves it to the archive or to the
 * quarantine with `<name>.error.txt` beside it. Files present at start are processed; files left in the
 * processing folder by a crash are processed again at start (idempotently). The processing, archive and
 * quarantine folders are never watched, even when they are inside the inbox.
 */
export class Inbox {
  private watcher?: FSWatcher;
  private queue: string[] = [];
  private queued = new Set<string>();
  private recovering: string[] = [];
  private active?: Promise<void>;
  private stopped = false;
  private rescan?: NodeJS.Timeout;
  private failures = new Map<string, number>();
  readonly outcomes: FileOutcome[] = [];
  onOutcome?: (o: FileOutcome) => void;

  private temp: RegExp;
  private own: string[];
  recovered = 0;

  constructor(private o: InboxOptions, private intake: Intake, private afterCommit: (o: FileOutcome) => Promise<void>, private log: Logger) {
    this.temp = new RegExp(o.tempPattern, 'iu');
    this.own = [o.processing, o.archive, o.quarantine].map((d) => resolve(d));
  }

  /** Names the inbox never reads: notes, names being written, the bus's own folders. */
  private ignored(p: string): boolean {
    const abs = resolve(p);
    if (abs === resolve(this.o.path)) return false;
    if (this.own.some((d) => abs === d || abs.startsWith(d + sep))) return true;
    const n = basename(abs);
    return NOTES.test(n) || this.temp.test(n);
  }

  private isMarker(path: string): boolean {
    return this.o.readiness === 'done-marker' && path.endsWith(this.o.doneSuffix) && basename(path) !== this.o.doneSuffix;
  }

  async start(): Promise<void> {
    for (const d of [this.o.path, this.o.processing, this.o.archive, this.o.quarantine]) await mkdir(d, { recursive: true });
    // files claimed by a run that stopped mid-way: processed again from the processing folder (idempotently)
    for (const n of (await readdir(this.o.processing)).sort()) {
      if (NOTES.test(n) || this.temp.test(n)) continue;
      this.recovering.push(join(this.o.processing, n));
    }
    if (this.recovering.length) this.active ??= this.drain().finally(() => (this.active = undefined));
    this.watcher = chokidar.watch(this.o.path, {
      depth: 0,
      ignoreInitial: false,
      usePolling: this.o.usePolling,
      interval: this.o.pollIntervalMs,
      ignored: (p: string) => this.ignored(p),
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
      for (const n of await readdir(this.o.path)) {
        const p = join(this.o.path, n);
        if (!this.ignored(p)) this.enqueue(p);
      }
    } catch (e) {
      this.log.warn('inbox scan failed', { err: e });
    }
  }

  private enqueue(path: string): void {
    // a done-marker announces the file it is named after
    if (this.isMarker(path)) path = path.slice(0, -this.o.doneSuffix.length);
    if (this.stopped || this.queued.has(path)) return;
    this.queued.add(path);
    this.queue.push(path);
    this.active ??= this.drain().finally(() => (this.active = undefined));
  }

  private async drain(): Promise<void> {
    while (this.recovering.length && !this.stopped) {
      const claimed = this.recovering.shift()!;
      try {
        await this.recover(claimed);
      } catch (e) {
        this.log.error('recovering a claimed file failed; it stays in the processing folder', { file: claimed, err: e });
      }
    }
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

  /** Whether the file is complete under the inbox's readiness rule (false: not now; it is looked at again). */
  private async ready(path: string): Promise<boolean> {
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) return false;
    if (this.o.readiness === 'stable') return this.waitStable(path);
    if (this.o.readiness === 'rename') return true; // temporary names are ignored; a final name is complete
    return stat(path + this.o.doneSuffix).then(() => true, () => false);
  }

  /** A file claimed before a crash: processed again; if its content was already recorded, only moved on. */
  private async recover(claimed: string): Promise<void> {
    const name = basename(claimed).replace(/^\d+-/, '');
    const flog = this.log.child({ file: name, recovered: true });
    this.recovered++;
    const sha256 = await sha256File(claimed);
    const done = await this.intake.findOriginal(sha256);
    if (!done) {
      flog.warn('file left in processing by an earlier run: processing it again');
      await this.process(claimed, name, flog);
      return;
    }
    // the earlier run committed it and stopped before moving the file: finish the move, record nothing twice
    const target = await freeName(done.status === 'REJECTED' ? this.o.quarantine : this.o.archive, name);
    await rename(claimed, target);
    if (done.status === 'REJECTED') await writeAtomic(`${target}.error.txt`, `${done.reason ?? 'rejected'}\n\nfile: ${name}\nfile id: ${done.id}\n`);
    flog.info('file left in processing had been recorded already; moved on', { fileId: done.id, status: done.status, to: target });
  }

  private async handle(path: string): Promise<void> {
    if (!(await this.ready(path))) return;
    const name = basename(path);
    const claimed = join(this.o.processing, `${Date.now()}-${name}`);
    try {
      await rename(path, claimed);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // taken by someone else
      throw e;
    }
    if (this.o.readiness === 'done-marker') await unlink(path + this.o.doneSuffix).catch(() => {});
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
        if (this.o.readiness === 'done-marker') await writeFile(join(this.o.path, name) + this.o.doneSuffix, '').catch(() => {});
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
    let outcome: FileOutcome | undefined;
    if (size > this.o.streamAboveBytes && size <= this.o.maxStreamedBytes) {
      outcome = await this.intake.processFile(claimed, name, size); // undefined: not streamable (small UFEBS root, unknown CSV)
    }
    if (!outcome && size > this.o.maxFileBytes) {
      outcome = await this.intake.recordRejected(name, await sha256File(claimed), size, 'inbox',
        size > this.o.maxStreamedBytes
          ? `FILE_TOO_LARGE: ${size} bytes exceeds inbox.maxStreamedBytes ${this.o.maxStreamedBytes}`
          : `FILE_TOO_LARGE: ${size} bytes exceeds inbox.maxFileBytes ${this.o.maxFileBytes} (only UFEBS PacketEPD files and CSV registries of a known layout are taken in streaming above it)`);
    }
    outcome ??= await this.intake.processBytes(await readFile(claimed), name);
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
