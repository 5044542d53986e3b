// Latency histograms as the proxies report them per version for a canary window: fixed upper bounds in ms and
// a count per bucket plus one overflow bucket (the same layout as telemetry's collected histograms, not
// cumulative). The judge reads percentiles from them and compares two of them bucket by bucket.

export interface LatencyHistogram {
  /** Upper bounds in milliseconds, strictly ascending; a value equal to a bound belongs to that bound's bucket. */
  readonly bounds: readonly number[];
  /** Observations per bucket: bounds.length + 1 entries, the last one above every bound. */
  readonly counts: readonly number[];
}

/** A percentile read from a histogram. */
export interface HistogramPercentile {
  /** Interpolated value in ms; the top bound when the percentile falls in the overflow bucket. */
  readonly valueMs: number;
  /** True when the percentile is above the top bound: valueMs is then only a lower limit. */
  readonly aboveTopBound: boolean;
}

/** Throws a RangeError naming the problem when the histogram is not well formed. */
export function validateHistogram(h: LatencyHistogram, label = 'histogram'): void {
  if (h.bounds.length === 0) throw new RangeError(`${label}.bounds: at least one bound is needed`);
  for (let i = 0; i < h.bounds.length; i++) {
    const b = h.bounds[i];
    if (!Number.isFinite(b) || b < 0) throw new RangeError(`${label}.bounds[${i}]: ${b} is not a finite ms value`);
    if (i > 0 && b <= h.bounds[i - 1])
      throw new RangeError(`${label}.bounds[${i}]: ${b} is not above the previous bound ${h.bounds[i - 1]}`);
  }
  if (h.counts.length !== h.bounds.length + 1)
    throw new RangeError(
      `${label}.counts: ${h.counts.length} entries for ${h.bounds.length} bounds (expected ${h.bounds.length + 1}, the last for overflow)`,
    );
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (!Number.isFinite(c) || c < 0 || !Number.isInteger(c))
      throw new RangeError(`${label}.counts[${i}]: ${c} is not a non-negative integer`);
  }
}

export function histogramTotal(h: LatencyHistogram): number {
  let total = 0;
  for (const c of h.counts) total += c;
  return total;
}

export function sameBounds(a: LatencyHistogram, b: LatencyHistogram): boolean {
  if (a.bounds.length !== b.bounds.length) return false;
  for (let i = 0; i < a.bounds.length; i++) if (a.bounds[i] !== b.bounds[i]) return false;
  return true;
}

/**
 * The q-quantile (0 < q ≤ 1) by linear interpolation inside the bucket that holds rank q·total, as Prometheus'
 * histogram_quantile does: observations are taken as spread evenly between the bucket's bounds (the first
 * bucket starts at 0 ms). The true value lies in the same bucket, so the error is at most that bucket's width.
 * Undefined for an empty histogram.
 */
export function histogramPercentile(h: LatencyHistogram, q: number): HistogramPercentile | undefined {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile ${q} is not in (0, 1]`);
  const total = histogramTotal(h);
  if (total === 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (c === 0) continue;
    if (below + c >= rank) {
      if (i === h.bounds.length) return { valueMs: h.bounds[i - 1], aboveTopBound: true };
      const lower = i === 0 ? 0 : h.bounds[i - 1];
      const upper = h.bounds[i];
      return { valueMs: lower + ((upper - lower) * (rank - below)) / c, aboveTopBound: false };
    }
    below += c;
  }
  // Unreachable: rank ≤ total, so the last non-empty bucket satisfies the test.
  return undefined;
}

/** The histogram of a list of raw samples (used by tests and by anyone holding raw latencies). */
export function histogramOf(samplesMs: Iterable<number>, bounds: readonly number[]): LatencyHistogram {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  for (const v of samplesMs) {
    let i = 0;
    while (i < bounds.length && v > bounds[i]) i++;
    counts[i]++;
  }
  return { bounds: [...bounds], counts };
}
