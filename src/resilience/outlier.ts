// Passive outlier detection's arithmetic, after Envoy's: what an attempt's outcome counts as, the consecutive
// error counts that eject an endpoint, the ejection time that grows with each ejection in a row, the share of
// a cluster that may be ejected at once, and the panic threshold under which a cluster balances over all.
// No clock and no sockets: the caller passes the time (proxy/cluster-health.ts).

export interface OutlierPolicy {
  /** 5xx answers (and gateway errors) in a row that eject; 0: never on this count. */
  readonly consecutive5xx: number;
  /** Gateway errors (502, 503, 504, connect failure, reset, timeout) in a row that eject; 0: never. */
  readonly consecutiveGatewayErrors: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
}

/** What one attempt says about its endpoint. */
export type Outcome = 'ok' | '5xx' | 'gateway';

/**
 * An attempt's outcome from its head status (0: none came) or the source of its error (flags.ts ErrorSource).
 * null: it says nothing about the endpoint (the answer could not be forwarded downstream: our side).
 */
export function classify(status: number, errorSource: string | null): Outcome | null {
  if (errorSource !== null) {
    if (errorSource === 'connect' || errorSource === 'upstream-reset' || errorSource === 'timeout') return 'gateway';
    if (errorSource === 'protocol') return '5xx';
    return null;
  }
  if (status === 502 || status === 503 || status === 504) return 'gateway';
  return status >= 500 ? '5xx' : 'ok';
}

/** One endpoint's record; it lives on the Endpoint, so it outlasts a reload that keeps the cluster. */
export class OutlierRecord {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  /** Ejections in a row: the multiplier of the base ejection time (falls back while the endpoint stays in play). */
  multiplier = 0;
  /** Ejections since the endpoint appeared (for /clusters). */
  timesEjected = 0;
  /** Back in play at this time (ms, the caller's clock); 0 while in play. */
  ejectedUntilMs = 0;
  /** When the multiplier last changed or the endpoint came back: the start of its good conduct. */
  private sinceMs = 0;

  get ejected(): boolean {
    return this.ejectedUntilMs !== 0;
  }

  /** Counts one outcome; true when a threshold is reached and the endpoint should go (if mayEject allows). */
  observe(outcome: Outcome, p: OutlierPolicy): boolean {
    if (this.ejected) return false; // answers of requests that were in flight when it went
    if (outcome === 'ok') {
      this.consecutive5xx = 0;
      this.consecutiveGateway = 0;
      return false;
    }
    // Envoy's consecutive_5xx counts locally originated errors too; a plain 500 breaks a run of gateway errors.
    this.consecutive5xx++;
    if (outcome === 'gateway') this.consecutiveGateway++;
    else this.consecutiveGateway = 0;
    return (
      (p.consecutive5xx > 0 && this.consecutive5xx >= p.consecutive5xx) ||
      (p.consecutiveGatewayErrors > 0 && this.consecutiveGateway >= p.consecutiveGatewayErrors)
    );
  }

  eject(p: OutlierPolicy, nowMs: number): void {
    this.multiplier++;
    this.timesEjected++;
    this.ejectedUntilMs = nowMs + ejectionTimeMs(p, this.multiplier);
    this.consecutive5xx = 0;
    this.consecutiveGateway = 0;
  }

  /**
   * The periodic sweep: true when an ejected endpoint's time is up and it is back in play. One that stays in play
   * for a base ejection time sheds one from its multiplier, so only ejections close together grow the time.
   */
  sweep(p: OutlierPolicy, nowMs: number): boolean {
    if (this.ejected) {
      if (nowMs < this.ejectedUntilMs) return false;
      this.ejectedUntilMs = 0;
      this.sinceMs = nowMs;
      return true;
    }
    if (this.multiplier > 0 && nowMs - this.sinceMs >= p.baseEjectionTimeMs) {
      this.multiplier--;
      this.sinceMs = nowMs;
    }
    return false;
  }
}

/** base × ejections in a row, capped at the max (or at base when the max is below it, as Envoy does). */
export function ejectionTimeMs(p: OutlierPolicy, multiplier: number): number {
  return Math.min(p.baseEjectionTimeMs * multiplier, Math.max(p.maxEjectionTimeMs, p.baseEjectionTimeMs));
}

/**
 * Envoy's rule: one more ejection is allowed while the ejected share, counting it, stays within maxEjectionPercent
 * of the cluster's endpoints; and one endpoint may always be ejected when none is (a 10% cap would otherwise
 * protect every endpoint of a cluster smaller than ten).
 */
export function mayEject(ejectedNow: number, total: number, maxEjectionPercent: number): boolean {
  if (total === 0) return false;
  return ejectedNow === 0 || (100 * (ejectedNow + 1)) / total <= maxEjectionPercent;
}

/** Envoy's panic mode: below this share of healthy endpoints, balancing over only those would overload them. */
export function inPanic(healthy: number, total: number, panicThresholdPercent: number): boolean {
  return total > 0 && healthy * 100 < panicThresholdPercent * total;
}
