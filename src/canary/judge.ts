// The canary judge: at the end of each stage's observation window, control's canary controller hands it what the
// proxies counted per version (requests, errors, a latency histogram) and gets back promote, rollback, hold or
// inconclusive, with the reasons and statistics its status API shows. Pure: no I/O, no clock, no state.
//
// Two kinds of evidence, as in the seed's canaryDeployment and in Kayenta:
// - absolute gates on the canary alone (promote at ≤ 1% errors and ≤ 500 ms p95; roll back above 5% or 1,000 ms);
// - comparison with stable over the same window (one-sided two-proportion z-test on errors, Mann-Whitney U on
//   latency), each with an effect-size guard so a statistically sure but harmless difference does not roll back.
import { errorRateTest, mannWhitneyTest } from './compare.ts';
import {
  histogramPercentile,
  histogramTotal,
  sameBounds,
  validateHistogram,
  type HistogramPercentile,
  type LatencyHistogram,
} from './histogram.ts';

/** What the proxies counted for one version over the window. */
export interface VersionWindow {
  readonly requests: number;
  /** 5xx responses and gRPC errors as counted by the proxy. */
  readonly errors: number;
  readonly latency: LatencyHistogram;
}

export interface CanaryWindow {
  readonly stable: VersionWindow;
  readonly canary: VersionWindow;
}

export interface CanaryPolicy {
  /** Promote only when the canary's error rate (0–1) is at most this. Seed: 0.01. */
  readonly promoteMaxErrorRate: number;
  /** Promote only when the canary's p95 is at most this. Seed: 500 ms. */
  readonly promoteMaxP95Ms: number;
  /** Roll back when the canary's error rate is above this. Seed: 0.05. */
  readonly rollbackErrorRate: number;
  /** Roll back when the canary's p95 is above this. Seed: 1,000 ms. */
  readonly rollbackP95Ms: number;
  /** Fewer requests (or latency observations) than this in either version: no promotion. */
  readonly minRequestsPerVersion: number;
  /**
   * 1 − the significance level of each comparison. Default 0.99: a rollout runs 2 tests at each of 5 stages, so
   * at 0.95 a healthy canary would meet a false "significantly worse" in about 40% of rollouts (1 − 0.95¹⁰),
   * at 0.99 in about 10%, and the effect-size guards below remove most of those. The price is power, which a
   * window of mesh traffic (hundreds to thousands of requests) has to spare: the scenarios in the tests are
   * decided at p < 1e-10.
   */
  readonly confidence: number;
  /**
   * Latency effect size: a significant latency difference rolls back only when the canary's p50 or p95 is at
   * least this many times stable's. Default 1.5: a 50% slowdown is one users notice, and percentiles read from
   * typical bucket layouts (bounds growing 1.5–2.5× per bucket) are only good to tens of percent, so smaller
   * ratios are within the estimate's own error.
   */
  readonly minLatencyRatio: number;
  /** Error effect size: a significant error difference rolls back only at ≥ this ratio of rates (default 2)… */
  readonly minErrorRateRatio: number;
  /** …and at ≥ this absolute increase (default 0.002, 0.2 percentage points: 0.1% → 0.25% does not roll back). */
  readonly minErrorRateIncrease: number;
}

export const DEFAULT_CANARY_POLICY: CanaryPolicy = Object.freeze({
  promoteMaxErrorRate: 0.01,
  promoteMaxP95Ms: 500,
  rollbackErrorRate: 0.05,
  rollbackP95Ms: 1000,
  minRequestsPerVersion: 100,
  confidence: 0.99,
  minLatencyRatio: 1.5,
  minErrorRateRatio: 2,
  minErrorRateIncrease: 0.002,
});

export type CanaryVerdict = 'promote' | 'rollback' | 'hold' | 'inconclusive';

export interface VersionStats {
  readonly requests: number;
  readonly errors: number;
  /** errors / requests; null without requests. */
  readonly errorRate: number | null;
  /** Observations in the latency histogram. */
  readonly latencySamples: number;
  /** Interpolated from the histogram, ms; null without observations. */
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  /** True when p95 lies in the overflow bucket: p95 is then the top bound, a lower limit. */
  readonly p95AboveTopBound: boolean;
}

export interface CanaryComparison {
  readonly errors: {
    readonly z: number;
    readonly pValue: number;
    readonly method: 'z-test' | 'fisher-exact';
    readonly ratio: number | null;
  };
  readonly latency: {
    readonly u: number;
    readonly z: number;
    readonly pValue: number;
    readonly ratioP50: number | null;
    readonly ratioP95: number | null;
  };
}

export interface CanaryJudgement {
  readonly verdict: CanaryVerdict;
  /** Human-readable, with the numbers; the first ones are those that decided the verdict. */
  readonly reasons: string[];
  readonly stats: {
    readonly stable: VersionStats;
    readonly canary: VersionStats;
    readonly comparison: CanaryComparison;
  };
}

export function judgeCanary(window: CanaryWindow, policyOverrides: Partial<CanaryPolicy> = {}): CanaryJudgement {
  const policy: CanaryPolicy = { ...DEFAULT_CANARY_POLICY, ...policyOverrides };
  validatePolicy(policy);
  validateVersion(window.stable, 'stable');
  validateVersion(window.canary, 'canary');
  if (!sameBounds(window.stable.latency, window.canary.latency))
    throw new RangeError('canary.latency.bounds: must equal stable.latency.bounds to compare the versions');

  const stable = versionStats(window.stable);
  const canary = versionStats(window.canary);
  const errorTest = errorRateTest(window.canary, window.stable);
  const latencyTest = mannWhitneyTest(window.canary.latency, window.stable.latency);
  const comparison: CanaryComparison = {
    errors: { ...errorTest, ratio: ratio(canary.errorRate, stable.errorRate) },
    latency: { ...latencyTest, ratioP50: ratio(canary.p50, stable.p50), ratioP95: ratio(canary.p95, stable.p95) },
  };
  const stats = { stable, canary, comparison };

  const canaryShort = shortOfData(canary, 'canary', policy);
  const stableShort = shortOfData(stable, 'stable', policy);

  // The canary's own numbers can condemn it without a baseline; nothing can pass it without enough of both.
  const absoluteRollback = canaryShort.length === 0 ? absoluteRollbackReasons(canary, stable, policy) : [];
  if (canaryShort.length > 0 || stableShort.length > 0) {
    if (absoluteRollback.length > 0)
      return { verdict: 'rollback', reasons: [...absoluteRollback, ...stableShort], stats };
    return { verdict: 'inconclusive', reasons: [...canaryShort, ...stableShort], stats };
  }

  const alpha = 1 - policy.confidence;
  const notes: string[] = [];
  const comparisonRollback = [
    ...errorComparison(canary, stable, comparison.errors, alpha, policy, notes),
    ...latencyComparison(canary, stable, comparison.latency, alpha, policy, notes),
  ];
  const rollback = [...absoluteRollback, ...comparisonRollback];
  if (rollback.length > 0) return { verdict: 'rollback', reasons: [...rollback, ...notes], stats };

  const held = promoteGateFailures(canary, policy);
  if (held.length > 0) return { verdict: 'hold', reasons: [...held, ...notes], stats };

  const confidencePct = formatThreshold(policy.confidence);
  return {
    verdict: 'promote',
    reasons: [
      `canary error rate ${formatPercent(canary.errorRate ?? 0)} (${canary.errors}/${canary.requests}) ≤ ${formatThreshold(policy.promoteMaxErrorRate)} and p95 ${formatMs(canary.p95)} ≤ ${policy.promoteMaxP95Ms} ms`,
      `${notes.length === 0 ? 'no significant degradation' : 'no degradation beyond the effect-size guards'} against stable at ${confidencePct} confidence: errors p = ${formatP(comparison.errors.pValue)} (${comparison.errors.method}), latency p = ${formatP(comparison.latency.pValue)}`,
      ...notes,
    ],
    stats,
  };
}

function versionStats(v: VersionWindow): VersionStats {
  const p50 = histogramPercentile(v.latency, 0.5);
  const p95 = histogramPercentile(v.latency, 0.95);
  const p99 = histogramPercentile(v.latency, 0.99);
  return {
    requests: v.requests,
    errors: v.errors,
    errorRate: v.requests > 0 ? v.errors / v.requests : null,
    latencySamples: histogramTotal(v.latency),
    p50: valueOf(p50),
    p95: valueOf(p95),
    p99: valueOf(p99),
    p95AboveTopBound: p95?.aboveTopBound ?? false,
  };
}

function valueOf(p: HistogramPercentile | undefined): number | null {
  return p === undefined ? null : p.valueMs;
}

function ratio(canary: number | null, stable: number | null): number | null {
  if (canary === null || stable === null) return null;
  if (stable === 0) return canary === 0 ? 1 : null;
  return canary / stable;
}

function shortOfData(s: VersionStats, name: string, policy: CanaryPolicy): string[] {
  const min = policy.minRequestsPerVersion;
  const out: string[] = [];
  if (s.requests < min)
    out.push(`${name}: ${s.requests} requests in the window, fewer than the ${min} needed for a verdict`);
  else if (s.latencySamples < min)
    out.push(`${name}: ${s.latencySamples} latency observations in the window, fewer than the ${min} needed`);
  return out;
}

function absoluteRollbackReasons(canary: VersionStats, stable: VersionStats, policy: CanaryPolicy): string[] {
  const out: string[] = [];
  const rate = canary.errorRate ?? 0;
  if (rate > policy.rollbackErrorRate) {
    let reason = `canary error rate ${formatPercent(rate)} (${canary.errors}/${canary.requests}) is above the ${formatThreshold(policy.rollbackErrorRate)} rollback threshold`;
    if ((stable.errorRate ?? 0) > policy.rollbackErrorRate)
      reason += ` (stable is at ${formatPercent(stable.errorRate ?? 0)} too: the cause may be shared, not the canary)`;
    out.push(reason);
  }
  const p95 = canary.p95 ?? 0;
  // In the overflow bucket p95 is only known to be above the top bound, which is enough when that is the threshold.
  if (p95 > policy.rollbackP95Ms || (canary.p95AboveTopBound && p95 >= policy.rollbackP95Ms)) {
    let reason = `canary p95 ${canary.p95AboveTopBound ? `≥ ${formatMs(p95)} (above the top bucket)` : formatMs(p95)} is above the ${policy.rollbackP95Ms} ms rollback threshold`;
    if ((stable.p95 ?? 0) > policy.rollbackP95Ms)
      reason += ` (stable p95 is ${formatMs(stable.p95)} too: the cause may be shared, not the canary)`;
    out.push(reason);
  }
  return out;
}

function errorComparison(
  canary: VersionStats,
  stable: VersionStats,
  test: CanaryComparison['errors'],
  alpha: number,
  policy: CanaryPolicy,
  notes: string[],
): string[] {
  if (!(test.pValue < alpha)) return [];
  const c = canary.errorRate ?? 0;
  const s = stable.errorRate ?? 0;
  const what = `canary error rate ${formatPercent(c)} vs stable ${formatPercent(s)} is significantly higher (z = ${test.z.toFixed(2)}, ${test.method} p = ${formatP(test.pValue)} < ${formatP(alpha)})`;
  const bigRatio = s === 0 ? c > 0 : c / s >= policy.minErrorRateRatio;
  const bigIncrease = c - s >= policy.minErrorRateIncrease;
  if (bigRatio && bigIncrease) return [what];
  notes.push(
    `${what}, but by less than the ${policy.minErrorRateRatio}× and +${formatThreshold(policy.minErrorRateIncrease)} needed to roll back on it`,
  );
  return [];
}

function latencyComparison(
  canary: VersionStats,
  stable: VersionStats,
  test: CanaryComparison['latency'],
  alpha: number,
  policy: CanaryPolicy,
  notes: string[],
): string[] {
  if (!(test.pValue < alpha)) return [];
  const what = `canary latency is significantly higher than stable's (Mann-Whitney U = ${test.u}, z = ${test.z.toFixed(2)}, p = ${formatP(test.pValue)} < ${formatP(alpha)}): p50 ${formatMs(canary.p50)} vs ${formatMs(stable.p50)} (${formatRatio(test.ratioP50)}), p95 ${formatMs(canary.p95)} vs ${formatMs(stable.p95)} (${formatRatio(test.ratioP95)})`;
  const min = policy.minLatencyRatio;
  if ((test.ratioP50 ?? 0) >= min || (test.ratioP95 ?? 0) >= min) return [what];
  notes.push(`${what}, but neither p50 nor p95 is ${min}× stable's, as needed to roll back on it`);
  return [];
}

function promoteGateFailures(canary: VersionStats, policy: CanaryPolicy): string[] {
  const out: string[] = [];
  const rate = canary.errorRate ?? 0;
  if (rate > policy.promoteMaxErrorRate)
    out.push(
      `canary error rate ${formatPercent(rate)} is above the ${formatThreshold(policy.promoteMaxErrorRate)} needed to promote (rollback only above ${formatThreshold(policy.rollbackErrorRate)}): holding the stage`,
    );
  const p95 = canary.p95 ?? 0;
  if (canary.p95AboveTopBound)
    // Above the top bound p95 could be anything: unknown is never a pass.
    out.push(
      `canary p95 is above the top bucket bound ${formatMs(p95)}, so it cannot be shown to be ≤ ${policy.promoteMaxP95Ms} ms as needed to promote: holding the stage`,
    );
  else if (p95 > policy.promoteMaxP95Ms)
    out.push(
      `canary p95 ${formatMs(p95)} is above the ${policy.promoteMaxP95Ms} ms needed to promote (rollback only above ${policy.rollbackP95Ms} ms): holding the stage`,
    );
  return out;
}

function validateVersion(v: VersionWindow, name: string): void {
  if (!Number.isInteger(v.requests) || v.requests < 0)
    throw new RangeError(`${name}.requests: ${v.requests} is not a non-negative integer`);
  if (!Number.isInteger(v.errors) || v.errors < 0 || v.errors > v.requests)
    throw new RangeError(`${name}.errors: ${v.errors} is not an integer in [0, requests = ${v.requests}]`);
  validateHistogram(v.latency, `${name}.latency`);
}

function validatePolicy(p: CanaryPolicy): void {
  const rate = (x: number): boolean => x >= 0 && x <= 1;
  if (!rate(p.promoteMaxErrorRate) || !rate(p.rollbackErrorRate) || p.promoteMaxErrorRate > p.rollbackErrorRate)
    throw new RangeError('policy: error rates must be in [0, 1] with promoteMaxErrorRate ≤ rollbackErrorRate');
  if (!(p.promoteMaxP95Ms >= 0) || !(p.promoteMaxP95Ms <= p.rollbackP95Ms))
    throw new RangeError('policy: need 0 ≤ promoteMaxP95Ms ≤ rollbackP95Ms');
  if (!(p.confidence > 0 && p.confidence < 1))
    throw new RangeError(`policy.confidence: ${p.confidence} is not in (0, 1)`);
  if (!(p.minRequestsPerVersion >= 1)) throw new RangeError('policy.minRequestsPerVersion: must be at least 1');
  if (!(p.minLatencyRatio >= 1) || !(p.minErrorRateRatio >= 1) || !(p.minErrorRateIncrease >= 0))
    throw new RangeError('policy: effect-size guards must be ratios ≥ 1 and an increase ≥ 0');
}

function formatPercent(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

/** A policy value as written: 0.01 → "1%", 0.995 → "99.5%", 0.002 → "0.2%". */
function formatThreshold(x: number): string {
  return `${Number((x * 100).toPrecision(6))}%`;
}

function formatMs(x: number | null): string {
  return x === null ? 'n/a' : `${x.toFixed(1)} ms`;
}

function formatRatio(x: number | null): string {
  return x === null ? 'n/a' : `${x.toFixed(2)}×`;
}

function formatP(p: number): string {
  return p >= 0.001 ? p.toFixed(3) : p.toExponential(1);
}
