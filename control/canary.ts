// The canary controller: rolls a service from one version to another in stages, each observed for a window and
// judged (src/canary/judge.ts) on what the proxies counted per version, read from Prometheus
// (canary-prometheus.ts) or, without it, from the proxies' own reports (reported-stats.ts). One record per service in the store (collection `canaries`): a restarted control picks
// a running canary up at its stage and window. It steers traffic through the traffic model like any API client:
// one generated rule per service (canary-rule.ts, which says which requests it takes and why), audited under the
// actor `canary-controller`.
import type { CanaryJudgement } from '../src/canary/judge.ts';
import { judgeCanary } from '../src/canary/judge.ts';
import type { CanaryMetrics, CanaryStatus } from '../src/telemetry/metrics-canary.ts';
import type { VersionWindow } from '../src/canary/judge.ts';
import { type CanaryHistoryEntry, type CanaryRecord, CanaryStart, type CanaryState } from './canary-schema.ts';
import { ApiError, parseWith } from './http.ts';
import { canaryRule } from './canary-rule.ts';
import type { RecordStore } from './store/types.ts';
import type { TrafficModel } from './traffic.ts';

const CANARIES = 'canaries';
export const CANARY_ACTOR = 'canary-controller';
const FINISHED: ReadonlySet<CanaryState> = new Set(['promoted', 'rolled_back', 'failed']);

const METRIC_STATUS: Record<CanaryState, CanaryStatus> = {
  running: 'in_progress',
  paused: 'in_progress',
  promoted: 'success',
  rolled_back: 'rolled_back',
  failed: 'failed',
};

export interface CanaryControllerOptions {
  readonly store: RecordStore;
  readonly traffic: TrafficModel;
  /**
   * Where each version's numbers come from: Prometheus (--prometheus), or the proxies' own reports over the
   * push channel (control/reported-stats.ts). Undefined: no automatic judging; people promote and roll back.
   */
  readonly stats?: VersionSource;
  readonly metrics?: CanaryMetrics;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** What a window's judgement reads: one version's requests, errors and latency over the last `windowS` seconds. */
export interface VersionSource {
  versionWindow(service: string, version: string, windowS: number): Promise<VersionWindow>;
}

export const NO_PROMETHEUS =
  "automatic judging cannot run: control was started without --prometheus, so it cannot read the versions' metrics; promote or roll back by hand";

export class CanaryController {
  readonly #opts: CanaryControllerOptions;
  readonly #canaries = new Map<string, CanaryRecord>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Per service, actions run one at a time (a window's judgement and an API call never interleave). */
  readonly #tails = new Map<string, Promise<unknown>>();
  #closed = false;

  private constructor(opts: CanaryControllerOptions) {
    this.#opts = opts;
  }

  static async open(opts: CanaryControllerOptions): Promise<CanaryController> {
    const c = new CanaryController(opts);
    for (const r of await opts.store.list<CanaryRecord>(CANARIES)) {
      c.#canaries.set(r.service, r);
      c.#report(r);
      if (r.state === 'running') {
        // Control may come back with or without --prometheus this time: judging follows what it has now.
        if (opts.stats === undefined) {
          r.windowEndsAt = null;
          r.note = NO_PROMETHEUS;
        } else if (r.windowEndsAt === null) {
          c.#newWindow(r);
          if (r.note === NO_PROMETHEUS) r.note = null;
        }
        opts.log(
          'info',
          `canary ${r.service}: resuming at stage ${r.stageIndex + 1} (${r.stages[r.stageIndex].weight}%)`,
        );
        c.#schedule(r);
      }
    }
    return c;
  }

  list(): CanaryRecord[] {
    return [...this.#canaries.values()].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
  }

  get(service: string): CanaryRecord {
    const r = this.#canaries.get(service);
    if (r === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no canary for service '${service}'`);
    return r;
  }

  start(body: unknown, actor: string): Promise<CanaryRecord> {
    const spec = parseWith(CanaryStart, body, 'canary');
    const stages =
      spec.stages[spec.stages.length - 1].weight === 100
        ? spec.stages
        : [...spec.stages, { weight: 100, windowS: 300 }];
    return this.#serial(spec.service, async () => {
      const old = this.#canaries.get(spec.service);
      if (old !== undefined && !FINISHED.has(old.state))
        throw new ApiError(
          'SKEIN_CONFLICT',
          `a canary for '${spec.service}' is ${old.state}; roll it back or let it finish first`,
        );
      const problems: string[] = [];
      const svc = this.#opts.traffic.lookupService(spec.service);
      if (svc === undefined) problems.push(`service: no service '${spec.service}' (POST /v1/services first)`);
      else
        for (const key of ['from', 'to'] as const)
          if (!svc.endpoints.some((e) => e.version === spec[key]))
            problems.push(`${key}: service '${spec.service}' has no endpoint with version '${spec[key]}'`);
      if (problems.length > 0) throw new ApiError('SKEIN_BAD_REQUEST', 'invalid canary', problems);
      const now = new Date().toISOString();
      const rec: CanaryRecord = {
        id: spec.service,
        service: spec.service,
        from: spec.from,
        to: spec.to,
        stages,
        autoPromote: spec.autoPromote,
        autoRollback: spec.autoRollback,
        maxExtensions: spec.maxExtensions,
        policy: spec.policy,
        state: 'running',
        stageIndex: 0,
        extensions: 0,
        startedAt: now,
        stageStartedAt: now,
        windowEndsAt: null,
        lastProgressAt: now,
        finishedAt: null,
        note: this.#opts.stats === undefined ? NO_PROMETHEUS : null,
        history: [],
      };
      this.#opts.log('info', `canary ${rec.service}: ${actor} started ${rec.from} → ${rec.to}`);
      await this.#enterStage(rec, 0);
      return rec;
    });
  }

  /** The next stage now, without judging (or the end, promoted, from the last split stage). */
  promote(service: string, actor: string): Promise<CanaryRecord> {
    return this.#serial(service, async () => {
      const rec = this.#active(service, 'promote');
      this.#record(rec, null, 'promote', actor, [`promoted by hand by ${actor}`], null);
      await this.#advance(rec);
      return rec;
    });
  }

  pause(service: string, actor: string): Promise<CanaryRecord> {
    return this.#serial(service, async () => {
      const rec = this.#active(service, 'pause');
      if (rec.state === 'paused') return rec;
      this.#record(rec, null, 'pause', actor, [`paused by ${actor}: the split stays, no window is judged`], null);
      rec.state = 'paused';
      rec.windowEndsAt = null;
      this.#unschedule(service);
      await this.#save(rec);
      return rec;
    });
  }

  /** A paused canary runs again: its stage's window starts afresh. */
  resume(service: string, actor: string): Promise<CanaryRecord> {
    return this.#serial(service, async () => {
      const rec = this.#active(service, 'resume');
      if (rec.state === 'running') return rec;
      this.#opts.log('info', `canary ${service}: resumed by ${actor}`);
      rec.state = 'running';
      rec.note = this.#opts.stats === undefined ? NO_PROMETHEUS : null;
      this.#newWindow(rec);
      await this.#save(rec);
      this.#schedule(rec);
      return rec;
    });
  }

  rollback(service: string, actor: string): Promise<CanaryRecord> {
    return this.#serial(service, async () => {
      const rec = this.#active(service, 'roll back');
      this.#record(rec, null, 'rollback', actor, [`rolled back by hand by ${actor}`], null);
      await this.#finish(rec, 'rolled_back');
      return rec;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#tails.values()]);
  }

  #active(service: string, what: string): CanaryRecord {
    const rec = this.get(service);
    if (FINISHED.has(rec.state))
      throw new ApiError('SKEIN_CONFLICT', `cannot ${what} the canary of '${service}': it is ${rec.state}`);
    return rec;
  }

  #serial<T>(service: string, action: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(service) ?? Promise.resolve()).then(action);
    this.#tails.set(
      service,
      run.catch(() => {}),
    );
    return run;
  }

  #newWindow(rec: CanaryRecord): void {
    const now = Date.now();
    rec.stageStartedAt = new Date(now).toISOString();
    // Nothing judges a window without Prometheus, so none is announced.
    const judged = rec.state === 'running' && this.#opts.stats !== undefined;
    rec.windowEndsAt = judged ? new Date(now + rec.stages[rec.stageIndex].windowS * 1000).toISOString() : null;
  }

  async #enterStage(rec: CanaryRecord, index: number): Promise<void> {
    rec.stageIndex = index;
    rec.extensions = 0;
    rec.lastProgressAt = new Date().toISOString();
    rec.note = this.#opts.stats === undefined ? NO_PROMETHEUS : null;
    this.#newWindow(rec);
    await this.#opts.traffic.putRule(canaryRule(rec, rec.stages[index].weight), CANARY_ACTOR, { create: false });
    await this.#save(rec);
    this.#schedule(rec);
  }

  async #advance(rec: CanaryRecord): Promise<void> {
    const next = rec.stageIndex + 1;
    if (next < rec.stages.length - 1) {
      this.#opts.log('info', `canary ${rec.service}: stage ${next + 1}, ${rec.stages[next].weight}% to ${rec.to}`);
      await this.#enterStage(rec, next);
      return;
    }
    // The 100% stage cannot be judged (stable has no traffic left to compare with), so the last split stage's
    // promotion is the final one.
    const last = rec.stages[rec.stageIndex].weight;
    rec.stageIndex = rec.stages.length - 1;
    this.#record(
      rec,
      'promote',
      'finish',
      CANARY_ACTOR,
      [
        `100%: not judged, as stable has no traffic to compare with at 100%; the promotion of the ${last}% stage is final`,
      ],
      null,
    );
    await this.#finish(rec, 'promoted');
  }

  /** Promoted: all traffic to `to`; rolled back or failed: all to `from`. One rule write, so one push. */
  async #finish(rec: CanaryRecord, state: 'promoted' | 'rolled_back' | 'failed'): Promise<void> {
    this.#unschedule(rec.service);
    rec.state = state;
    rec.windowEndsAt = null;
    rec.note = null;
    const now = new Date().toISOString();
    rec.finishedAt = now;
    rec.lastProgressAt = now;
    await this.#opts.traffic.putRule(canaryRule(rec, state === 'promoted' ? 100 : 0), CANARY_ACTOR, { create: false });
    await this.#save(rec);
    this.#opts.log(state === 'promoted' ? 'info' : 'warn', `canary ${rec.service}: ${state}`);
  }

  #record(
    rec: CanaryRecord,
    verdict: CanaryHistoryEntry['verdict'],
    action: CanaryHistoryEntry['action'],
    decidedBy: string,
    reasons: string[],
    stats: CanaryJudgement['stats'] | null,
  ): void {
    rec.history.push({
      stage: rec.stageIndex,
      weight: rec.stages[rec.stageIndex].weight,
      startedAt: rec.stageStartedAt,
      endedAt: new Date().toISOString(),
      verdict,
      action,
      decidedBy,
      reasons,
      stats,
    });
  }

  #schedule(rec: CanaryRecord): void {
    this.#unschedule(rec.service);
    if (this.#closed || rec.state !== 'running' || rec.windowEndsAt === null) return;
    if (this.#opts.stats === undefined) return; // nothing to judge with: people decide
    const delay = Math.max(0, Date.parse(rec.windowEndsAt) - Date.now());
    const timer = setTimeout(() => {
      this.#timers.delete(rec.service);
      void this.#serial(rec.service, () => this.#judge(rec.service)).catch((err: unknown) =>
        this.#opts.log(
          'error',
          `canary ${rec.service}: judging failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        ),
      );
    }, delay);
    this.#timers.set(rec.service, timer);
  }

  #unschedule(service: string): void {
    clearTimeout(this.#timers.get(service));
    this.#timers.delete(service);
  }

  /** The end of a window: read both versions' numbers, judge, act. */
  async #judge(service: string): Promise<void> {
    const rec = this.#canaries.get(service);
    const source = this.#opts.stats;
    if (rec === undefined || rec.state !== 'running' || source === undefined || this.#closed) return;
    const windowS = Math.max(1, Math.round((Date.now() - Date.parse(rec.stageStartedAt)) / 1000));
    let judgement: Pick<CanaryJudgement, 'verdict' | 'reasons'> & { stats: CanaryJudgement['stats'] | null };
    try {
      const [stable, canary] = await Promise.all([
        source.versionWindow(service, rec.from, windowS),
        source.versionWindow(service, rec.to, windowS),
      ]);
      judgement = judgeCanary({ stable, canary }, rec.policy);
    } catch (err) {
      judgement = {
        verdict: 'inconclusive',
        reasons: [`cannot judge the window: ${(err as Error).message}`],
        stats: null,
      };
    }
    const { verdict, reasons } = judgement;
    const stats = judgement.stats;
    this.#opts.log('info', `canary ${service}: stage ${rec.stageIndex + 1} verdict ${verdict}: ${reasons[0] ?? ''}`);
    if (verdict === 'promote') {
      if (rec.autoPromote) {
        this.#record(rec, verdict, 'promote', CANARY_ACTOR, reasons, stats);
        await this.#advance(rec);
      } else {
        this.#record(
          rec,
          verdict,
          'wait',
          CANARY_ACTOR,
          [...reasons, 'autoPromote is off: waiting for a promote by hand'],
          stats,
        );
        rec.note =
          'the judge would promote; autoPromote is off, so the stage waits for POST /v1/canaries/:service/promote';
        this.#newWindow(rec);
        await this.#save(rec);
        this.#schedule(rec);
      }
      return;
    }
    if (verdict === 'rollback') {
      if (rec.autoRollback) {
        this.#record(rec, verdict, 'rollback', CANARY_ACTOR, reasons, stats);
        await this.#finish(rec, 'rolled_back');
      } else {
        this.#record(
          rec,
          verdict,
          'pause',
          CANARY_ACTOR,
          [...reasons, 'autoRollback is off: paused for a person to decide'],
          stats,
        );
        rec.state = 'paused';
        rec.windowEndsAt = null;
        rec.note = 'the judge would roll back; autoRollback is off, so the canary is paused with its split unchanged';
        await this.#save(rec);
      }
      return;
    }
    if (rec.extensions >= rec.maxExtensions) {
      this.#record(
        rec,
        verdict,
        'fail',
        CANARY_ACTOR,
        [
          ...reasons,
          `no verdict after ${rec.extensions + 1} windows of this stage (at most ${rec.maxExtensions} extensions): failed, all traffic back to ${rec.from}`,
        ],
        stats,
      );
      await this.#finish(rec, 'failed');
      return;
    }
    this.#record(rec, verdict, 'extend', CANARY_ACTOR, reasons, stats);
    rec.extensions++;
    this.#newWindow(rec);
    await this.#save(rec);
    this.#schedule(rec);
  }

  async #save(rec: CanaryRecord): Promise<void> {
    await this.#opts.store.put(CANARIES, rec);
    this.#canaries.set(rec.service, rec);
    this.#report(rec);
  }

  #report(rec: CanaryRecord): void {
    const judged = [...rec.history].reverse().find((h) => h.stats !== null)?.stats?.canary;
    this.#opts.metrics?.report(rec.service, {
      status: METRIC_STATUS[rec.state],
      errorRatePercent: judged?.errorRate == null ? undefined : judged.errorRate * 100,
      responseTimeP95Ms: judged?.p95 ?? undefined,
      startedAtMs: Date.parse(rec.startedAt),
      lastProgressAtMs: Date.parse(rec.lastProgressAt),
      ...(rec.finishedAt !== null && { finishedAtMs: Date.parse(rec.finishedAt) }),
    });
  }
}
