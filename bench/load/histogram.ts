// HDR histograms for the load engines: latency and generator lag in microseconds, and their summaries as the
// LoadResult reports them (fixed percentiles plus a percentile curve dense in the tail, for charts).
import { build, type Histogram } from 'hdr-histogram-js';
import type { GeneratorLag, LatencyUs } from './types.ts';

/** p99 lag at or above this means the generator, not the target, shaped the latencies. */
export const TRUSTWORTHY_LAG_P99_US = 1000;

/** 1 µs to 1 hour at 3 significant digits; larger values are clamped rather than thrown on. */
const HIGHEST_US = 3_600_000_000;

export function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
}

/** Records a duration in µs (rounded, at least 1 so a sub-microsecond value is still counted). */
export function recordUs(h: Histogram, us: number): void {
  h.recordValue(us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : Math.round(us));
}

export function latencySummary(h: Histogram): LatencyUs {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean * 10) / 10,
  };
}

export function lagSummary(h: Histogram): GeneratorLag {
  const p99Us = h.totalCount === 0 ? 0 : h.getValueAtPercentile(99);
  return {
    p50Us: h.totalCount === 0 ? 0 : h.getValueAtPercentile(50),
    p99Us,
    maxUs: h.totalCount === 0 ? 0 : h.maxValue,
    trustworthy: p99Us < TRUSTWORTHY_LAG_P99_US,
  };
}

/**
 * Percentiles for a curve: eight per decade of nines (0, 25.0, 43.8, … 90, … 99, … 99.9 …) plus the median,
 * stopping where the sample count can no longer tell percentiles apart, and ending at 100 (the max).
 */
export function curvePercentiles(count: number): number[] {
  const points = new Set<number>([50]);
  // Beyond 1 − 1/count every percentile is the max: one sample stands for the whole tail.
  const finest = count > 1 ? 1 - 1 / count : 0;
  for (let i = 0; i <= 40; i++) {
    const p = 1 - 10 ** (-i / 8);
    if (p > finest) break;
    points.add(Math.round(p * 1e6) / 1e4);
  }
  points.add(100);
  return [...points].sort((a, b) => a - b);
}

export function percentileCurve(h: Histogram): [number, number][] {
  if (h.totalCount === 0) return [];
  return curvePercentiles(h.totalCount).map((p) => [p, p === 100 ? h.maxValue : h.getValueAtPercentile(p)]);
}

/** Curve points from a few known percentiles (engines that only report those), ascending, duplicates dropped. */
export function curveFromPoints(points: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = [...points].filter(([, v]) => Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
  return sorted.filter((p, i) => i === 0 || p[0] !== sorted[i - 1][0]).map(([p, v]) => [p, v]);
}
