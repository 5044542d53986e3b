// Benchmark jobs: `skein bench run` started for a caller of control's API, one at a time (a run pins CPUs, so
// two at once would measure each other), each in its own process that reports progress as JSON lines. Every
// job is a record in the store, written on each change of state, so the history survives restarts: a job that
// was queued runs after a restart, one that was running is marked interrupted. Finished jobs older than the
// retention period are forgotten with their reports.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProgressEvent } from '../bench/run/progress.ts';
import type { MeshType } from '../bench/report/model.ts';
import { type BenchJobRequest, checkBenchRequest } from './bench-request.ts';
import { ApiError } from './http.ts';
import type { RecordStore } from './store/types.ts';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'] as const;
export type BenchJobStatus = (typeof JOB_STATUSES)[number];
const FINISHED: ReadonlySet<BenchJobStatus> = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

export interface BenchJobProgress {
  readonly percent: number;
  readonly etaS: number;
  readonly step: string;
  readonly elapsedS: number;
}

export interface BenchJob {
  readonly id: string;
  status: BenchJobStatus;
  readonly request: BenchJobRequest;
  /** The `skein bench run` arguments the request became (control adds --out and --progress). */
  readonly args: readonly string[];
  /** Mesh types measured: skein or baseline for local targets, each remote's own. */
  readonly meshTypes: readonly MeshType[];
  readonly createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The bench process while it runs. */
  pid?: number;
  progress?: BenchJobProgress;
  exitCode?: number | null;
  error?: string;
  /** The last lines the run logged. */
  log: string[];
  /** report.json, report.md and report.html are here once the job succeeded. */
  readonly resultDir: string;
  cancelRequestedAt?: string;
}

export interface BenchJobsOptions {
  readonly store: RecordStore;
  /** One directory per job under here. */
  readonly resultsDir: string;
  readonly retentionMs: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** argv that runs `skein` (default: this Node with bin/skein.js); `bench run …` is appended. */
  readonly command?: readonly string[];
}

const COLLECTION = 'bench-jobs';
const LOG_LINES = 50;
/** How long a cancelled run may take to stop the proxies it started before it is killed. */
const CANCEL_GRACE_MS = 30_000;
const HOUR_MS = 60 * 60 * 1000;

function defaultCommand(): string[] {
  // dist/control/bench-jobs.js or control/bench-jobs.ts: bin/ is two levels or one level up.
  for (const rel of ['../../bin/skein.js', '../bin/skein.js']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return [process.execPath, path];
  }
  throw new Error('bin/skein.js not found beside the control sources');
}

/** setpriv --pdeathsig: the kernel sends the run SIGTERM if control dies, and the run then stops what it started. */
function setprivPath(): string | undefined {
  return ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
}

function newId(): string {
  return `bj-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

function meshTypesOf(req: BenchJobRequest, localTargets: readonly string[]): MeshType[] {
  const types = new Set<MeshType>();
  for (const t of localTargets) types.add(t.startsWith('skein') ? 'skein' : 'baseline');
  for (const r of req.remotes ?? []) types.add(r.mesh);
  return [...types];
}

export interface JobFilter {
  readonly status?: BenchJobStatus;
  readonly mesh?: MeshType;
  readonly limit?: number;
}

export class BenchJobs {
  readonly #opts: BenchJobsOptions;
  readonly #command: readonly string[];
  readonly #jobs = new Map<string, BenchJob>();
  #running: { job: BenchJob; child: ChildProcess; exited: Promise<void> } | undefined;
  /** The running job's whole life, up to its final record being written. */
  #active: Promise<void> | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(opts: BenchJobsOptions) {
    this.#opts = opts;
    this.#command = opts.command ?? defaultCommand();
  }

  static async open(opts: BenchJobsOptions): Promise<BenchJobs> {
    const jobs = new BenchJobs(opts);
    await jobs.#load();
    jobs.#timer = setInterval(() => void jobs.#expire().catch((err) => opts.log('error', String(err))), HOUR_MS);
    jobs.#timer.unref();
    jobs.#next();
    return jobs;
  }

  async #load(): Promise<void> {
    for (const job of await this.#opts.store.list<BenchJob>(COLLECTION)) {
      this.#jobs.set(job.id, job);
      if (job.status === 'running') {
        job.status = 'interrupted';
        job.error = 'control stopped while the job ran; its partial results were not kept';
        job.finishedAt = new Date().toISOString();
        delete job.pid;
        await this.#save(job);
      }
    }
    await this.#expire();
  }

  async #expire(): Promise<void> {
    const cutoff = Date.now() - this.#opts.retentionMs;
    for (const job of [...this.#jobs.values()]) {
      if (!FINISHED.has(job.status) || Date.parse(job.finishedAt ?? job.createdAt) >= cutoff) continue;
      this.#jobs.delete(job.id);
      await this.#opts.store.delete(COLLECTION, job.id);
      rmSync(job.resultDir, { recursive: true, force: true });
    }
  }

  #save(job: BenchJob): Promise<void> {
    return this.#opts.store.put(COLLECTION, job);
  }

  /** Validates and queues a job; it starts at once when nothing else runs. */
  async start(body: unknown): Promise<BenchJob> {
    if (this.#closed) throw new ApiError('SKEIN_UNAVAILABLE', 'control is shutting down');
    const { request, args, options } = checkBenchRequest(body);
    const id = newId();
    const job: BenchJob = {
      id,
      status: 'queued',
      request,
      args,
      meshTypes: meshTypesOf(request, options.localTargets),
      createdAt: new Date().toISOString(),
      log: [],
      resultDir: join(this.#opts.resultsDir, id),
    };
    this.#jobs.set(id, job);
    await this.#save(job);
    this.#opts.log('info', `bench job ${id} queued: skein bench run ${args.join(' ')}`);
    this.#next();
    return job;
  }

  get(id: string): BenchJob {
    const job = this.#jobs.get(id);
    if (job === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no bench job '${id}'`);
    return job;
  }

  /** Newest first. */
  list(filter: JobFilter = {}): BenchJob[] {
    const out = [...this.#jobs.values()]
      .filter((j) => filter.status === undefined || j.status === filter.status)
      .filter((j) => filter.mesh === undefined || j.meshTypes.includes(filter.mesh))
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1));
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  /** The finished job's report.json, parsed. */
  result(id: string): unknown {
    return JSON.parse(readFileSync(this.reportFile(id, 'json'), 'utf8')) as unknown;
  }

  /** Path of the job's report in `format`; a 409 while it runs, a 404 when the run left none. */
  reportFile(id: string, format: 'json' | 'md' | 'html'): string {
    const job = this.get(id);
    if (!FINISHED.has(job.status))
      throw new ApiError('SKEIN_CONFLICT', `bench job '${id}' is ${job.status}; its report comes when it finishes`);
    const file = join(job.resultDir, `report.${format}`);
    if (!existsSync(file))
      throw new ApiError(
        'SKEIN_NOT_FOUND',
        `bench job '${id}' ${job.status} without a report${job.error ? `: ${job.error}` : ''}`,
      );
    return file;
  }

  /** Cancels a queued job at once, a running one by stopping its run (which stops every process it started). */
  async cancel(id: string): Promise<BenchJob> {
    const job = this.get(id);
    if (FINISHED.has(job.status)) throw new ApiError('SKEIN_CONFLICT', `bench job '${id}' already ${job.status}`);
    job.cancelRequestedAt ??= new Date().toISOString();
    if (job.status === 'queued') {
      job.status = 'cancelled';
      job.finishedAt = new Date().toISOString();
      await this.#save(job);
      return job;
    }
    const running = this.#running;
    if (running?.job === job) {
      await this.#save(job);
      const active = this.#active;
      await this.#stopChild(running.child, running.exited);
      await active; // the record says cancelled once this resolves
    }
    return job;
  }

  async #stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CANCEL_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (killed) {
      this.#opts.log('warn', `bench run ${child.pid} did not stop within ${CANCEL_GRACE_MS} ms of SIGTERM; killing it`);
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** Starts the oldest queued job when nothing runs. */
  #next(): void {
    if (this.#closed || this.#active !== undefined) return;
    const queued = [...this.#jobs.values()]
      .filter((j) => j.status === 'queued')
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))[0];
    if (queued === undefined) return;
    this.#active = this.#run(queued)
      .catch((err: unknown) => this.#opts.log('error', `bench job ${queued.id}: ${String(err)}`))
      .finally(() => {
        this.#active = undefined;
        this.#next();
      });
  }

  async #run(job: BenchJob): Promise<void> {
    const [cmd, ...base] = this.#command;
    const argv = [...base, 'bench', 'run', ...job.args, '--out', job.resultDir, '--progress', 'json'];
    const setpriv = setprivPath();
    const child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'TERM', cmd, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.#running = { job, child, exited };
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    job.pid = child.pid;
    await this.#save(job);
    this.#opts.log('info', `bench job ${job.id} running (pid ${child.pid})`);

    let partial = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        this.#onLine(job, partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    if (partial !== '') this.#onLine(job, partial);
    this.#running = undefined;
    delete job.pid;
    job.exitCode = code;
    job.finishedAt = new Date().toISOString();
    if (this.#closed && job.cancelRequestedAt === undefined) {
      job.status = 'interrupted';
      job.error = 'control shut down while the job ran';
    } else if (job.cancelRequestedAt !== undefined) {
      job.status = 'cancelled';
    } else if (code === 0) {
      job.status = 'succeeded';
      if (job.progress !== undefined) job.progress = { ...job.progress, percent: 100, etaS: 0 };
    } else {
      job.status = 'failed';
      job.error = spawnError?.message ?? job.log.at(-1) ?? `skein bench exited with status ${code}`;
    }
    await this.#save(job);
    this.#opts.log('info', `bench job ${job.id} ${job.status}`);
  }

  #onLine(job: BenchJob, line: string): void {
    if (line.trim() === '') return;
    let event: ProgressEvent | undefined;
    if (line.startsWith('{')) {
      try {
        event = JSON.parse(line) as ProgressEvent;
      } catch {
        event = undefined;
      }
    }
    if (event === undefined || event.type === 'log') {
      job.log.push(event?.type === 'log' ? event.message : line);
      if (job.log.length > LOG_LINES) job.log.splice(0, job.log.length - LOG_LINES);
      return;
    }
    job.progress = { percent: event.percent, etaS: event.etaS, step: event.step, elapsedS: event.elapsedS };
    // Steps are seconds apart; ticks only move the percentage, which a reader gets from memory.
    if (event.type === 'step') void this.#save(job).catch((err) => this.#opts.log('error', String(err)));
  }

  /** Stops the running job (it becomes interrupted); queued jobs stay queued for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const running = this.#running;
    if (running !== undefined) await this.#stopChild(running.child, running.exited);
    // #run's own continuation records the outcome; wait for it to be written.
    await this.#active;
  }
}
