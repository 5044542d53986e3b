// `skein bench compare`'s judgement: two reports, every target × scenario × metric both have, the change of the
// median in percent and a verdict. The CI regression-gate convention: a default threshold of 10%; worse by more than
// the threshold is a regression (the gate fails), better by more is an improvement, anything within ±threshold is
// stable; a regression beyond twice the threshold is critical. Pure: reading files and printing live in compare-cli.ts.
import type { BenchReport, ScenarioSummary, Spread } from './model.ts';

export type Verdict = 'improvement' | 'stable' | 'regression';
export type Direction = 'higher-is-better' | 'lower-is-better';

export interface MetricDefinition {
  readonly key: string;
  readonly label: string;
  readonly unit: 'req/s' | 'µs' | 's/1k' | 'MB' | 'ratio';
  readonly direction: Direction;
  /** Differences smaller than this (in the metric's unit) are stable whatever their percentage: a change from 5 µs
   *  to 7 µs of added latency is +40% and still timer noise. */
  readonly noiseFloor: number;
  readonly pick: (s: ScenarioSummary) => number | undefined;
}

const median = (s: Spread | undefined) => s?.median;

/** The compared metrics. Max latency is left out: it is a single request, too noisy to gate a build on. */
export const COMPARED_METRICS: readonly MetricDefinition[] = [
  metric('throughputPerS', 'throughput', 'req/s', 'higher-is-better', 0, (s) => median(s.throughputPerS)),
  metric('p50Us', 'p50', 'µs', 'lower-is-better', 0, (s) => median(s.p50Us)),
  metric('p90Us', 'p90', 'µs', 'lower-is-better', 0, (s) => median(s.p90Us)),
  metric('p99Us', 'p99', 'µs', 'lower-is-better', 0, (s) => median(s.p99Us)),
  metric('p999Us', 'p99.9', 'µs', 'lower-is-better', 0, (s) => median(s.p999Us)),
  metric('addedP50Us', 'added p50', 'µs', 'lower-is-better', 10, (s) => median(s.addedP50Us)),
  metric('addedP99Us', 'added p99', 'µs', 'lower-is-better', 10, (s) => median(s.addedP99Us)),
  metric('cpuSecondsPer1k', 'CPU s / 1k req', 's/1k', 'lower-is-better', 0, (s) => median(s.cpuSecondsPer1k)),
  metric('peakRssMb', 'peak RSS', 'MB', 'lower-is-better', 0, (s) => median(s.peakRssMb)),
  // 0.1 percentage point: one failed request in a few thousand is not a trend.
  metric('errorRate', 'error rate', 'ratio', 'lower-is-better', 0.001, (s) => s.errorRate),
];

function metric(
  key: string,
  label: string,
  unit: MetricDefinition['unit'],
  direction: Direction,
  noiseFloor: number,
  pick: MetricDefinition['pick'],
): MetricDefinition {
  return { key, label, unit, direction, noiseFloor, pick };
}

export interface ComparisonRow {
  readonly target: string;
  readonly scenario: string;
  readonly metric: string;
  readonly label: string;
  readonly unit: MetricDefinition['unit'];
  readonly direction: Direction;
  readonly baseline: number;
  readonly current: number;
  /** (current − baseline) / |baseline| × 100; null when the baseline is 0 and the current value is not. */
  readonly changePct: number | null;
  readonly verdict: Verdict;
  /** A regression worse than twice the threshold. */
  readonly critical: boolean;
}

export interface Comparison {
  readonly thresholdPct: number;
  readonly rows: readonly ComparisonRow[];
  /** What could not be compared and why (absent on one side); never a failure. */
  readonly skipped: readonly string[];
  readonly regressions: number;
  readonly improvements: number;
  readonly stable: number;
}

export interface CompareOptions {
  /** Percent change beyond which a metric is a regression or an improvement (default 10). */
  readonly thresholdPct?: number;
}

export const DEFAULT_THRESHOLD_PCT = 10;

/** A JSON report stores NaN (a metric no round produced) as null: both mean "absent". */
const present = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** The verdict on one metric; exported for its tests and for callers that judge a single number. */
export function judge(
  def: Pick<MetricDefinition, 'direction' | 'noiseFloor'>,
  baseline: number,
  current: number,
  thresholdPct: number,
): { changePct: number | null; verdict: Verdict; critical: boolean } {
  const diff = current - baseline;
  const changePct = baseline === 0 ? (current === 0 ? 0 : null) : (diff / Math.abs(baseline)) * 100;
  if (Math.abs(diff) <= def.noiseFloor) return { changePct, verdict: 'stable', critical: false };
  const worse = def.direction === 'higher-is-better' ? diff < 0 : diff > 0;
  // Exactly at the threshold is stable; the epsilon keeps float rounding (110 vs 100) from deciding it.
  const beyond = (t: number) => changePct === null || Math.abs(changePct) > t + 1e-9;
  if (!beyond(thresholdPct)) return { changePct, verdict: 'stable', critical: false };
  return worse
    ? { changePct, verdict: 'regression', critical: beyond(2 * thresholdPct) }
    : { changePct, verdict: 'improvement', critical: false };
}

/**
 * Compares every target × scenario × metric present in both reports (medians). Targets, scenarios and metrics
 * missing on either side are listed in `skipped`, not judged.
 */
export function compareReports(baseline: BenchReport, current: BenchReport, options: CompareOptions = {}): Comparison {
  const thresholdPct = options.thresholdPct ?? DEFAULT_THRESHOLD_PCT;
  if (!(thresholdPct > 0) || !Number.isFinite(thresholdPct))
    throw new RangeError(`thresholdPct must be a positive number, got ${thresholdPct}`);
  const rows: ComparisonRow[] = [];
  const skipped: string[] = [];
  const baseTargets = new Map(baseline.targets.map((t) => [t.name, t]));
  for (const target of current.targets) {
    const base = baseTargets.get(target.name);
    if (base === undefined) {
      skipped.push(`${target.name}: not in the baseline`);
      continue;
    }
    baseTargets.delete(target.name);
    const baseResults = new Map(base.results.map((r) => [r.scenario, r]));
    for (const result of target.results) {
      const baseResult = baseResults.get(result.scenario);
      baseResults.delete(result.scenario);
      if (baseResult === undefined) {
        skipped.push(`${target.name} ${result.scenario}: not in the baseline`);
        continue;
      }
      for (const def of COMPARED_METRICS) {
        const b = def.pick(baseResult.summary);
        const c = def.pick(result.summary);
        if (!present(b) && !present(c)) continue;
        if (!present(b) || !present(c)) {
          skipped.push(
            `${target.name} ${result.scenario} ${def.label}: only in the ${present(b) ? 'baseline' : 'current'}`,
          );
          continue;
        }
        const j = judge(def, b, c, thresholdPct);
        rows.push({
          target: target.name,
          scenario: result.scenario,
          metric: def.key,
          label: def.label,
          unit: def.unit,
          direction: def.direction,
          baseline: b,
          current: c,
          ...j,
        });
      }
    }
    for (const scenario of baseResults.keys()) {
      const why = target.available
        ? 'no figures in the current report'
        : `unavailable now: ${target.unavailableReason}`;
      skipped.push(`${target.name} ${scenario}: ${why}`);
    }
  }
  for (const name of baseTargets.keys()) skipped.push(`${name}: not in the current report`);
  const count = (v: Verdict) => rows.filter((r) => r.verdict === v).length;
  return {
    thresholdPct,
    rows,
    skipped,
    regressions: count('regression'),
    improvements: count('improvement'),
    stable: count('stable'),
  };
}
