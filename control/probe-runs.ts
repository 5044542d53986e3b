// eBPF probe runs for control's API (the seed's /ebpf/probe/start and /status): the probes of probes/ attached
// to given PIDs for a duration, up to four at once. A POST answers once the probes are attached, so traffic the
// caller sends next is measured. Each run is a record in the store, written on every change of state; a run
// that was attached when control died is marked interrupted at the next start (bpftrace itself died with
// control: it runs under --pdeathsig KILL).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { preflight } from '../probes/preflight.ts';
import { SCRIPT_NAMES, type ScriptName } from '../probes/program.ts';
import { type ProbeResult, ProbeRun } from '../probes/runner.ts';
import { ApiError, parseWith } from './http.ts';
import type { RecordStore } from './store/types.ts';

export const PROBE_STATUSES = ['starting', 'running', 'succeeded', 'stopped', 'failed', 'interrupted'] as const;
export type ProbeRunStatus = (typeof PROBE_STATUSES)[number];
const FINISHED: ReadonlySet<ProbeRunStatus> = new Set(['succeeded', 'stopped', 'failed', 'interrupted']);

export const ProbeRunRequest = z.strictObject({
  pids: z.array(z.int().min(1)).min(1).max(64),
  durationS: z.number().gt(0).max(3600).default(10),
  scripts: z.array(z.enum(SCRIPT_NAMES)).min(1).optional(),
});

export interface ProbeRunRecord {
  readonly id: string;
  status: ProbeRunStatus;
  readonly pids: readonly number[];
  /** What was asked for; preflight may add dependencies or drop optional scripts this kernel lacks. */
  readonly scripts: readonly ScriptName[];
  readonly durationS: number;
  readonly createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
  warnings: string[];
  result?: ProbeResult;
}

/** A record without its figures, for listings. */
export type ProbeRunSummary = Omit<ProbeRunRecord, 'result'>;

export interface ProbeRunsOptions {
  readonly store: RecordStore;
  readonly retentionMs: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const COLLECTION = 'probe-runs';
export const MAX_CONCURRENT_PROBES = 4;
const HOUR_MS = 60 * 60 * 1000;
/**
 * How long bpftrace may take to print its figures and exit after SIGINT. Usually well under a second, but
 * detaching each tracepoint waits for an RCU grace period, and on a loaded 2-CPU machine a full CI run once
 * took bpftrace past 15 s; the figures are worth waiting for.
 */
const STOP_TIMEOUT_MS = 60_000;

interface Active {
  readonly run: ProbeRun;
  readonly timer: NodeJS.Timeout;
  /** Resolves once the record holds the run's final state. */
  readonly finished: Promise<void>;
  finish(reason: 'succeeded' | 'stopped'): Promise<void>;
}

function summary({ result: _, ...rest }: ProbeRunRecord): ProbeRunSummary {
  return rest;
}

export class ProbeRuns {
  readonly #opts: ProbeRunsOptions;
  readonly #records = new Map<string, ProbeRunRecord>();
  readonly #active = new Map<string, Active>();
  /** Runs between validation and attach: they count against the limit too. */
  #starting = 0;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(opts: ProbeRunsOptions) {
    this.#opts = opts;
  }

  static async open(opts: ProbeRunsOptions): Promise<ProbeRuns> {
    const runs = new ProbeRuns(opts);
    for (const r of await opts.store.list<ProbeRunRecord>(COLLECTION)) {
      runs.#records.set(r.id, r);
      if (!FINISHED.has(r.status)) {
        r.status = 'interrupted';
        r.error = 'control stopped while the probe ran';
        r.finishedAt = new Date().toISOString();
        await opts.store.put(COLLECTION, r);
      }
    }
    await runs.#expire();
    runs.#timer = setInterval(() => void runs.#expire().catch((err) => opts.log('error', String(err))), HOUR_MS);
    runs.#timer.unref();
    return runs;
  }

  async #expire(): Promise<void> {
    const cutoff = Date.now() - this.#opts.retentionMs;
    for (const r of [...this.#records.values()]) {
      if (!FINISHED.has(r.status) || Date.parse(r.finishedAt ?? r.createdAt) >= cutoff) continue;
      this.#records.delete(r.id);
      await this.#opts.store.delete(COLLECTION, r.id);
    }
  }

  #save(r: ProbeRunRecord): Promise<void> {
    return this.#opts.store.put(COLLECTION, r);
  }

  /** Validates, attaches and answers with the running record; the figures come after `durationS`. */
  async start(body: unknown): Promise<ProbeRunRecord> {
    if (this.#closed) throw new ApiError('SKEIN_UNAVAILABLE', 'control is shutting down');
    const req = parseWith(ProbeRunRequest, body);
    const missing = req.pids.flatMap((pid, i) =>
      existsSync(`/proc/${pid}`) ? [] : [`pids[${i}]: no process with PID ${pid}`],
    );
    if (missing.length > 0) throw new ApiError('SKEIN_BAD_REQUEST', 'invalid request body', missing);
    const check = preflight(req.scripts ?? SCRIPT_NAMES);
    if (check.problems.length > 0)
      throw new ApiError('SKEIN_UNAVAILABLE', 'eBPF probes cannot run here', check.problems);
    if (this.#active.size + this.#starting >= MAX_CONCURRENT_PROBES)
      throw new ApiError(
        'SKEIN_TOO_MANY',
        `${MAX_CONCURRENT_PROBES} probe runs are already attached; stop one or wait`,
      );

    const record: ProbeRunRecord = {
      id: `pr-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
      status: 'starting',
      pids: req.pids,
      scripts: req.scripts ?? [...SCRIPT_NAMES],
      durationS: req.durationS,
      createdAt: new Date().toISOString(),
      warnings: check.warnings,
    };
    this.#records.set(record.id, record);
    this.#starting++;
    let run: ProbeRun;
    try {
      await this.#save(record);
      run = await ProbeRun.start({ pids: req.pids, scripts: req.scripts });
    } catch (err) {
      record.status = 'failed';
      record.error = err instanceof Error ? err.message : String(err);
      record.finishedAt = new Date().toISOString();
      await this.#save(record);
      throw new ApiError('SKEIN_UNAVAILABLE', `probes did not attach: ${record.error}`);
    } finally {
      this.#starting--;
    }
    record.status = 'running';
    record.startedAt = new Date().toISOString();
    record.warnings = [...new Set([...record.warnings, ...run.warnings])];
    await this.#save(record);
    this.#opts.log('info', `probe run ${record.id} attached to PIDs ${req.pids.join(', ')} for ${req.durationS} s`);
    this.#track(record, run);
    return record;
  }

  #track(record: ProbeRunRecord, run: ProbeRun): void {
    let finishing: Promise<void> | undefined;
    let resolveFinished!: () => void;
    const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
    const finish = (status: 'succeeded' | 'stopped') =>
      (finishing ??= (async () => {
        clearTimeout(timer);
        try {
          record.result = await run.stop(STOP_TIMEOUT_MS);
          record.status = status;
        } catch (err) {
          record.status = 'failed';
          record.error = err instanceof Error ? err.message : String(err);
        } finally {
          await run.kill();
        }
        record.finishedAt = new Date().toISOString();
        this.#active.delete(record.id);
        await this.#save(record);
        this.#opts.log('info', `probe run ${record.id} ${record.status}`);
      })()
        .catch((err: unknown) => this.#opts.log('error', `probe run ${record.id}: ${String(err)}`))
        .finally(resolveFinished));
    const timer = setTimeout(() => void finish('succeeded'), record.durationS * 1000);
    this.#active.set(record.id, { run, timer, finished, finish });
  }

  get(id: string): ProbeRunRecord {
    const r = this.#records.get(id);
    if (r === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no probe run '${id}'`);
    return r;
  }

  /** The figures of a finished run; 409 while it runs. */
  result(id: string): ProbeResult {
    const r = this.get(id);
    if (!FINISHED.has(r.status))
      throw new ApiError('SKEIN_CONFLICT', `probe run '${id}' is ${r.status}; its figures come when it finishes`);
    if (r.result === undefined)
      throw new ApiError(
        'SKEIN_NOT_FOUND',
        `probe run '${id}' ${r.status} without figures${r.error ? `: ${r.error}` : ''}`,
      );
    return r.result;
  }

  /** Ends a running probe early; the figures up to now are kept. Answers once they are. */
  async stop(id: string): Promise<ProbeRunRecord> {
    const r = this.get(id);
    const active = this.#active.get(id);
    if (active === undefined) throw new ApiError('SKEIN_CONFLICT', `probe run '${id}' already ${r.status}`);
    await active.finish('stopped');
    return r;
  }

  /** Newest first, without figures. */
  list(filter: { status?: ProbeRunStatus; limit?: number } = {}): ProbeRunSummary[] {
    const out = [...this.#records.values()]
      .filter((r) => filter.status === undefined || r.status === filter.status)
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1))
      .map(summary);
    return filter.limit === undefined ? out : out.slice(0, filter.limit);
  }

  /** Whether probes can run here (and why not), what runs now and the last finished runs. */
  status(): {
    available: boolean;
    problems: string[];
    warnings: string[];
    running: ProbeRunSummary[];
    recent: ProbeRunSummary[];
  } {
    const check = preflight(SCRIPT_NAMES);
    const all = this.list();
    return {
      available: check.problems.length === 0,
      problems: check.problems,
      warnings: check.warnings,
      running: all.filter((r) => !FINISHED.has(r.status)),
      recent: all.filter((r) => FINISHED.has(r.status)).slice(0, 20),
    };
  }

  /** Stops every attached probe, keeping its figures; never leaves bpftrace running. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all(
      [...this.#active.entries()].map(([id, a]) => {
        const r = this.#records.get(id);
        if (r !== undefined) r.warnings.push('stopped early: control shut down');
        return a.finish('stopped');
      }),
    );
  }
}
