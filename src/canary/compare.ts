// The canary judge's two statistical comparisons of canary against stable, as Kayenta makes them: a one-sided
// two-proportion z-test on error rates and a one-sided Mann-Whitney U test on latency histograms. Both ask
// "is the canary worse?"; a small p-value is evidence that it is.
import { histogramTotal, sameBounds, type LatencyHistogram } from './histogram.ts';
import { normalSurvival } from './normal.ts';

export interface ErrorRateTest {
  /** (canary rate − stable rate) / pooled standard error; positive when the canary errs more. */
  readonly z: number;
  /** One-sided P(Z ≥ z) under "same error rate". */
  readonly pValue: number;
}

/**
 * Two-proportion z-test with the pooled rate under the null hypothesis. When the pooled rate is 0 or 1 (no
 * errors anywhere, or nothing but errors) the versions are indistinguishable: z = 0, p = 0.5.
 */
export function errorRateTest(
  canary: { requests: number; errors: number },
  stable: { requests: number; errors: number },
): ErrorRateTest {
  const n1 = canary.requests;
  const n2 = stable.requests;
  if (n1 === 0 || n2 === 0) return { z: 0, pValue: 0.5 };
  const pooled = (canary.errors + stable.errors) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { z: 0, pValue: 0.5 };
  const z = (canary.errors / n1 - stable.errors / n2) / se;
  return { z, pValue: normalSurvival(z) };
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
 * normal approximation is good, and no continuity correction is applied (it moves z by 0.5/σ, under 0.001 at
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
