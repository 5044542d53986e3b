// Summary statistics for repeated benchmark rounds: median with the min–max spread, never a mean,
// because a single noisy round on a shared VM should not move the headline number.
// Pure functions; non-finite inputs (a round that produced no value) are ignored, not counted as zero.

/** Median and range of one metric over rounds. `n` = how many finite values went in (0 → all fields NaN). */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** Middle value of the finite numbers in `values` (mean of the two middle ones for an even count); NaN if none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/**
 * Pairs two per-round series by round number and combines each pair (a ratio, a difference).
 * Comparing within a round cancels slow drift of the machine better than comparing two medians.
 */
export function pairByRound<T extends { readonly round: number }>(
  a: readonly T[],
  b: readonly T[],
  combine: (x: T, y: T) => number,
): number[] {
  const byRound = new Map(b.map((r) => [r.round, r]));
  const out: number[] = [];
  for (const x of a) {
    const y = byRound.get(x.round);
    if (y !== undefined) out.push(combine(x, y));
  }
  return out;
}
