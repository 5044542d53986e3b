// The per-endpoint circuit breaker's state machine: closed → open (consecutive failures, or a failure rate over
// a rolling window) → half-open after openMs (a few probes let through) → closed on a probe's success, open
// again on its failure. Pure: the caller passes the time (performance.now() ms) and reports each outcome.
import type { EndpointBreakerConfig } from '../config/breaker-schema.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What a finished request says about its endpoint; neutral (the client went away) changes nothing. */
export type Outcome = 'success' | 'failure' | 'neutral';

/** The rolling window is kept as this many buckets of windowMs / BUCKETS each. */
const BUCKETS = 10;

/** Returned by admit() for a request that is not a half-open probe. */
export const NOT_A_PROBE = -1;

export class EndpointBreaker {
  private readonly cfg: EndpointBreakerConfig;
  private readonly onChange: ((state: BreakerState) => void) | undefined;
  private current: BreakerState = 'closed';
  /** While open: when it turns half-open (ms). */
  private openUntilMs = 0;
  /** Bumped on every transition: a probe's outcome only counts in the half-open period that admitted it. */
  private epoch = 0;
  private probesInFlight = 0;
  private consecutive = 0;
  private readonly bucketMs: number;
  private readonly totals = new Int32Array(BUCKETS);
  private readonly failures = new Int32Array(BUCKETS);
  private windowTotal = 0;
  private windowFailures = 0;
  /** The bucket (time / bucketMs) last written. */
  private lastBucket = 0;
  /** Times it opened, for /clusters. */
  opened = 0;

  constructor(cfg: EndpointBreakerConfig, onChange?: (state: BreakerState) => void) {
    this.cfg = cfg;
    this.onChange = onChange;
    this.bucketMs = Math.max(1, cfg.windowMs / BUCKETS);
  }

  /** The state now (an open breaker whose openMs has passed is half-open). */
  state(nowMs: number): BreakerState {
    if (this.current === 'open' && nowMs >= this.openUntilMs) this.transition('half-open');
    return this.current;
  }

  /** Closed, and so admits anything without a clock read: the pick's fast path. */
  get closed(): boolean {
    return this.current === 'closed';
  }

  /** Would a request be let through now? (Open: no; half-open: while a probe slot is free.) */
  admits(nowMs: number): boolean {
    const s = this.state(nowMs);
    return s === 'closed' || (s === 'half-open' && this.probesInFlight < this.cfg.halfOpenRequests);
  }

  /**
   * The pick chose this endpoint (after admits() said yes): a half-open breaker gives a probe slot. Returns the
   * probe's token for record(), or NOT_A_PROBE.
   */
  admit(nowMs: number): number {
    if (this.state(nowMs) !== 'half-open') return NOT_A_PROBE;
    this.probesInFlight++;
    return this.epoch;
  }

  /** A request to this endpoint finished; `probe` is what admit() returned for it. */
  record(nowMs: number, outcome: Outcome, probe: number): void {
    if (probe !== NOT_A_PROBE) {
      if (probe !== this.epoch || this.current !== 'half-open') return; // a probe of a half-open period gone by
      this.probesInFlight--;
      if (outcome === 'success') this.transition('closed');
      else if (outcome === 'failure') this.trip(nowMs);
      return;
    }
    // Requests let through before it opened (or while it was half-open, as non-probes) say nothing now.
    if (this.current !== 'closed' || outcome === 'neutral') return;
    const failed = outcome === 'failure';
    this.count(nowMs, failed);
    if (!failed) {
      this.consecutive = 0;
      return;
    }
    this.consecutive++;
    const c = this.cfg;
    if (c.consecutiveFailures > 0 && this.consecutive >= c.consecutiveFailures) this.trip(nowMs);
    else if (
      c.failureRatePercent > 0 &&
      this.windowTotal >= c.minimumRequests &&
      this.windowFailures * 100 >= c.failureRatePercent * this.windowTotal
    )
      this.trip(nowMs);
  }

  /** For /clusters: what the window holds now. */
  window(nowMs: number): { requests: number; failures: number; consecutiveFailures: number } {
    this.advance(nowMs);
    return { requests: this.windowTotal, failures: this.windowFailures, consecutiveFailures: this.consecutive };
  }

  /** While open: ms until it turns half-open. */
  remainingOpenMs(nowMs: number): number {
    return this.state(nowMs) === 'open' ? Math.max(0, Math.ceil(this.openUntilMs - nowMs)) : 0;
  }

  private trip(nowMs: number): void {
    this.openUntilMs = nowMs + this.cfg.openMs;
    this.opened++;
    this.transition('open');
  }

  private transition(to: BreakerState): void {
    this.current = to;
    this.epoch++;
    this.probesInFlight = 0;
    this.consecutive = 0;
    this.totals.fill(0);
    this.failures.fill(0);
    this.windowTotal = 0;
    this.windowFailures = 0;
    this.onChange?.(to);
  }

  private count(nowMs: number, failed: boolean): void {
    const i = this.advance(nowMs) % BUCKETS;
    this.totals[i]++;
    this.windowTotal++;
    if (failed) {
      this.failures[i]++;
      this.windowFailures++;
    }
  }

  /** Moves the window to `nowMs`, emptying the buckets it left behind; returns the current bucket number. */
  private advance(nowMs: number): number {
    const bucket = Math.floor(nowMs / this.bucketMs);
    const last = this.lastBucket;
    if (bucket <= last) return last;
    const stale = Math.min(bucket - last, BUCKETS);
    for (let k = 1; k <= stale; k++) {
      const i = (last + k) % BUCKETS;
      this.windowTotal -= this.totals[i];
      this.windowFailures -= this.failures[i];
      this.totals[i] = 0;
      this.failures[i] = 0;
    }
    this.lastBucket = bucket;
    return bucket;
  }
}
