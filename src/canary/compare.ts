// The canary judge's two statistical comparisons of canary against stable, as Kayenta makes them: a one-sided
// two-proportion z-test on error rates and a one-sided Mann-Whitney U test on latency histograms. Both ask
// "is the canary worse?"; a small p-value is evidence that it is.
import { histogramTotal, sameBounds, type LatencyHistogram } from './histogram.ts';
import { normalSurvival } from './normal.ts';

export interface ErrorRateTest {
  /** (canary rate − stable rate) / pooled standard error; positive when the canary errs more. */
  readonly z: number;
  /** One-sided P(canary errs at least this much more) under "same error rate", from `method`. */
  readonly pValue: number;
  /**
   * Where pValue comes from: the z-test's normal tail when every expected cell count of the 2×2 table is at least
   * MIN_EXPECTED_COUNT (Cochran's rule), else Fisher's exact test. With a few errors in a window (1 error of 200
   * against 0 of 1,800 gives z = 3.0, p = 0.001) the normal tail is far too small; the exact p there is 0.1.
   */
  readonly method: 'z-test' | 'fisher-exact';
}

/** Cochran's rule of thumb for the normal approximation of a 2×2 table. */
export const MIN_EXPECTED_COUNT = 5;

interface Counts {
  readonly requests: number;
  readonly errors: number;
}

/**
 * Two-proportion z-test with the pooled rate under the null hypothesis, one-sided (canary worse). When the pooled
 * rate is 0 or 1 (no errors anywhere, or nothing but errors) the versions are indistinguishable: z = 0, p = 0.5.
 */
export function errorRateTest(canary: Counts, stable: Counts): ErrorRateTest {
  const n1 = canary.requests;
  const n2 = stable.requests;
  if (n1 === 0 || n2 === 0) return { z: 0, pValue: 0.5, method: 'z-test' };
  const pooled = (canary.errors + stable.errors) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { z: 0, pValue: 0.5, method: 'z-test' };
  const z = (canary.errors / n1 - stable.errors / n2) / se;
  const smallestExpected = Math.min(n1, n2) * Math.min(pooled, 1 - pooled);
  if (smallestExpected >= MIN_EXPECTED_COUNT) return { z, pValue: normalSurvival(z), method: 'z-test' };
  return { z, pValue: fisherExactGreater(canary, stable), method: 'fisher-exact' };
}

/**
 * Fisher's exact test, one-sided: given the total number of errors E, the probability that the canary's n₁
 * requests hold at least the errors they did if the E errors had fallen on the N requests at random
 * (hypergeometric). Terms are built by their ratio in log space and normalized over the whole support, so
 * no factorial is ever formed: exact up to rounding for any window size, O(E) time.
 */
export function fisherExactGreater(canary: Counts, stable: Counts): number {
  const n1 = canary.requests;
  const n2 = stable.requests;
  const total = canary.errors + stable.errors;
  const lo = Math.max(0, total - n2);
  const hi = Math.min(total, n1);
  // log of C(n1, x)·C(n2, E − x) up to a constant, for x = lo … hi.
  const logTerms = new Float64Array(hi - lo + 1);
  for (let x = lo; x < hi; x++) {
    const ratio = ((n1 - x) * (total - x)) / ((x + 1) * (n2 - total + x + 1));
    logTerms[x - lo + 1] = logTerms[x - lo] + Math.log(ratio);
  }
  let max = -Infinity;
  for (const l of logTerms) if (l > max) max = l;
  let all = 0;
  let upper = 0;
  for (let x = lo; x <= hi; x++) {
    const t = Math.exp(logTerms[x - lo] - max);
    all += t;
    if (x >= canary.errors) upper += t;
  }
  return Math.min(1, upper / all);
}

export interface MannWhitneyTest {
  /** The canary's U: pairs (canary, stable) where the canary is slower, plus half the pairs in one bucket. */
  readonly u: number;
  /** (U − n₁n₂/2) / σ with the tie-corrected σ; positive when the canary tends to be slower. */
  readonly z: number;
  /** One-sided P(Z ≥ z) under "same latency distribution". */
  readonly pValue: number;
}

/**
 * Mann-Whitney U from two histograms with the same bounds. Within a bucket the order of observations is unknown,
 * so they are ties: each canary observation beats every stable one in a lower bucket and half-beats every stable
 * one in its own bucket, which is exactly U computed from midranks. The variance is the tie-corrected
 * n₁n₂/12 · ((N + 1) − Σ(t³ − t)/(N(N − 1))), t the bucket totals; with the large samples of a canary window the
 * normal approximation is good, and no continuity correction is applied (it moves z by 0.5/σ, about 0.001 at
 * 100 requests per version), which keeps swapping the versions an exact sign flip of z.
 */
export function mannWhitneyTest(canary: LatencyHistogram, stable: LatencyHistogram): MannWhitneyTest {
  if (!sameBounds(canary, stable))
    throw new RangeError('mannWhitneyTest: the two histograms must have the same bucket bounds');
  const n1 = histogramTotal(canary);
  const n2 = histogramTotal(stable);
  if (n1 === 0 || n2 === 0) return { u: 0, z: 0, pValue: 0.5 };
  let u = 0;
  let stableBelow = 0;
  let tieSum = 0;
  for (let i = 0; i < canary.counts.length; i++) {
    const a = canary.counts[i];
    const b = stable.counts[i];
    u += a * (stableBelow + b / 2);
    stableBelow += b;
    const t = a + b;
    tieSum += t * t * t - t;
  }
  const n = n1 + n2;
  const variance = ((n1 * n2) / 12) * (n + 1 - tieSum / (n * (n - 1)));
  if (!(variance > 0)) return { u, z: 0, pValue: 0.5 }; // every observation in one bucket: no ordering at all
  const z = (u - (n1 * n2) / 2) / Math.sqrt(variance);
  return { u, z, pValue: normalSurvival(z) };
}
