// Which of a cluster's endpoints the balancer gets: those passing active health checks and not ejected by outlier
// detection, or all of them when too few are (panic). Runs the cluster's checks (a timer per endpoint) and the
// outlier sweep that brings ejected endpoints back; both start with the cluster and stop when it closes. The
// records live on the Endpoints, so a cluster reused across a reload keeps them.
import type { ClusterConfig } from '../src/config/schema.ts';
import type { HealthChecksConfig, OutlierDetectionConfig } from '../src/config/health-schema.ts';
import type { LbEndpoint, LoadBalancer } from '../src/lb/types.ts';
import { type CheckRecord, nextCheckDelay } from '../src/resilience/health.ts';
import { classify, inPanic, mayEject, type OutlierRecord } from '../src/resilience/outlier.ts';
import { probe, type ProbeTarget } from './health-probe.ts';

/** What health needs of an endpoint (cluster.ts's Endpoint is one): where to probe, and its two records. */
export interface HealthEndpoint extends LbEndpoint, ProbeTarget {
  readonly id: string;
  readonly check: CheckRecord;
  readonly outlier: OutlierRecord;
}

export type HealthEvent = 'check-success' | 'check-failure' | 'ejection';

export interface HealthLog {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
}

export class ClusterHealth<Endpoint extends HealthEndpoint = HealthEndpoint> {
  private readonly name: string;
  private readonly host: string;
  private readonly lb: LoadBalancer;
  private readonly checks: HealthChecksConfig | undefined;
  readonly outlier: OutlierDetectionConfig | undefined;
  private readonly panicPercent: number;
  /** `protocol: http2`: the endpoints may speak only h2c, so HTTP checks go over it too. */
  private readonly h2c: boolean;
  private readonly log: HealthLog;
  private readonly onEvent: (event: HealthEvent) => void;
  private endpoints: readonly Endpoint[] = [];
  /** What the balancer has now: a change of health rebuilds its tables only when this changes. */
  private inLb: readonly Endpoint[] = [];
  private readonly checkTimers = new Map<Endpoint, NodeJS.Timeout>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private started = false;
  private closed = false;
  /** Too few endpoints are healthy: the balancer has them all. */
  panic = false;

  constructor(config: ClusterConfig, lb: LoadBalancer, log: HealthLog, onEvent: (event: HealthEvent) => void) {
    this.name = config.name;
    this.host = config.service ?? config.name;
    this.lb = lb;
    this.checks = config.healthChecks;
    this.outlier = config.outlierDetection;
    this.panicPercent = config.lb.panicThresholdPercent;
    this.h2c = config.protocol === 'http2';
    this.log = log;
    this.onEvent = onEvent;
  }

  /** Discovery's new list: checks start for new endpoints and stop for gone ones; the balancer always hears. */
  setEndpoints(list: readonly Endpoint[]): void {
    this.endpoints = list;
    if (this.started && this.checks !== undefined) {
      const present = new Set(list);
      for (const [ep, timer] of this.checkTimers) {
        if (present.has(ep)) continue;
        clearTimeout(timer);
        this.checkTimers.delete(ep);
      }
      for (const ep of list) if (!this.checkTimers.has(ep)) this.firstCheck(ep);
    }
    this.rebalance(true); // weights may have changed even where the set did not
  }

  /** Checks every endpoint (first within one jitter of now) and sweeps ejections; timers never hold the process. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    if (this.checks !== undefined) for (const ep of this.endpoints) this.firstCheck(ep);
    if (this.outlier !== undefined) {
      const policy = this.outlier;
      this.sweepTimer = setInterval(() => this.sweep(policy), policy.intervalMs);
      this.sweepTimer.unref();
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.checkTimers.values()) clearTimeout(timer);
    this.checkTimers.clear();
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** The outlier stage, per attempt: its head status (0: none) or the source of its error. */
  observe(ep: Endpoint, status: number, errorSource: string | null): void {
    const policy = this.outlier;
    if (policy === undefined) return;
    const outcome = classify(status, errorSource);
    if (outcome === null || !ep.outlier.observe(outcome, policy)) return;
    const endpoints = this.endpoints;
    if (!endpoints.includes(ep)) return; // discovery removed it while the request was in flight
    if (!mayEject(this.ejectedCount, endpoints.length, policy.maxEjectionPercent)) return;
    ep.outlier.eject(policy, Date.now());
    this.onEvent('ejection');
    this.log.warn('endpoint ejected', {
      cluster: this.name,
      endpoint: ep.id,
      until: new Date(ep.outlier.ejectedUntilMs).toISOString(),
      ejections: ep.outlier.timesEjected,
    });
    this.rebalance(false);
  }

  /** The endpoints the balancer picks among now: the healthy ones, or all of them in panic. */
  get inRotation(): readonly Endpoint[] {
    return this.inLb;
  }

  get healthyCount(): number {
    let n = 0;
    for (const ep of this.endpoints) if (ep.check.healthy && !ep.outlier.ejected) n++;
    return n;
  }

  get ejectedCount(): number {
    let n = 0;
    for (const ep of this.endpoints) if (ep.outlier.ejected) n++;
    return n;
  }

  /** An endpoint's fields in /clusters. */
  describe(ep: Endpoint): Record<string, unknown> {
    const o = ep.outlier;
    const fields: Record<string, unknown> = {
      health: o.ejected ? 'ejected' : ep.check.healthy ? 'healthy' : 'unhealthy',
    };
    if (this.checks !== undefined) {
      fields.activeCheck = ep.check.healthy ? 'passing' : 'failing';
      if (ep.check.lastFailure !== '') fields.lastCheckFailure = ep.check.lastFailure;
    }
    if (this.outlier !== undefined) {
      fields.ejections = o.timesEjected;
      if (o.ejected) fields.ejectedUntil = new Date(o.ejectedUntilMs).toISOString();
    }
    return fields;
  }

  private firstCheck(ep: Endpoint): void {
    const checks = this.checks!;
    // The interval's jitter alone: a new endpoint is checked at once, but a cluster's checks don't all align.
    this.schedule(ep, nextCheckDelay(checks.intervalMs, checks.jitterPercent) - checks.intervalMs);
  }

  private schedule(ep: Endpoint, delayMs: number): void {
    const timer = setTimeout(() => this.check(ep), delayMs);
    timer.unref();
    this.checkTimers.set(ep, timer);
  }

  private check(ep: Endpoint): void {
    const checks = this.checks!;
    void probe(ep, checks, this.host, this.h2c).then((failure) => {
      if (this.closed || !this.checkTimers.has(ep)) return; // closed, or the endpoint left, while it ran
      const ok = failure === null;
      this.onEvent(ok ? 'check-success' : 'check-failure');
      if (ep.check.record(ok, checks, failure ?? '')) {
        if (ok) this.log.info('endpoint healthy again', { cluster: this.name, endpoint: ep.id });
        else this.log.warn('endpoint unhealthy', { cluster: this.name, endpoint: ep.id, reason: failure });
        this.rebalance(false);
      }
      this.schedule(ep, nextCheckDelay(checks.intervalMs, checks.jitterPercent));
    });
  }

  private sweep(policy: OutlierDetectionConfig): void {
    const now = Date.now();
    let returned = false;
    for (const ep of this.endpoints) {
      if (!ep.outlier.sweep(policy, now)) continue;
      returned = true;
      this.log.info('endpoint back from ejection', { cluster: this.name, endpoint: ep.id });
    }
    if (returned) this.rebalance(false);
  }

  /** Gives the balancer the healthy endpoints, or all in panic; unless forced, only when that set changed. */
  private rebalance(force: boolean): void {
    const all = this.endpoints;
    const healthy = all.filter((ep) => ep.check.healthy && !ep.outlier.ejected);
    const panic = inPanic(healthy.length, all.length, this.panicPercent);
    if (panic !== this.panic && all.length > 0)
      this.log.warn(panic ? 'too few healthy endpoints: balancing over all (panic)' : 'panic over', {
        cluster: this.name,
        healthy: healthy.length,
        endpoints: all.length,
      });
    this.panic = panic;
    const next = panic ? all : healthy;
    if (!force && sameList(next, this.inLb)) return;
    this.inLb = next;
    this.lb.update(next);
  }
}

function sameList(a: readonly HealthEndpoint[], b: readonly HealthEndpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
