// The standard normal distribution for the canary judge's tests: both the two-proportion z-test and the
// Mann-Whitney normal approximation end in a tail probability. Accurate in the far tails too (a one-sided
// p-value of 1e-20 is reported as such, not as 0), because control's status API shows the p-values.

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Below this the Taylor series is used, above it the continued fraction; both are accurate around 3. */
const SERIES_LIMIT = 3;
/** Continued-fraction depth: at x = 3 (its slowest point) 120 terms reach double precision. */
const FRACTION_TERMS = 120;

/** The standard normal density φ(z). */
export function normalPdf(z: number): number {
  return INV_SQRT_2PI * Math.exp(-0.5 * z * z);
}

/**
 * Φ(x) − 1/2 for 0 ≤ x < 3 from the series φ(x)·(x + x³/3 + x⁵/(3·5) + …) (Marsaglia, J. Stat. Software 11(4),
 * 2004). All terms are positive, so there is no cancellation; at x = 3 the sum is about 113, which bounds the
 * rounding error near 1e-16 absolute.
 */
function halfCentral(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let k = 1; k < 200; k++) {
    term *= x2 / (2 * k + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return normalPdf(x) * sum;
}

/**
 * 1 − Φ(x) for x ≥ 3 from the Laplace continued fraction of the Mills ratio, φ(x) / (x + 1/(x + 2/(x + 3/(x + …)))),
 * evaluated from the tail inward. Keeps full relative precision where 1 − Φ(x) would underflow to 0 when computed
 * as a difference.
 */
function upperTailFraction(x: number): number {
  let t = x;
  for (let k = FRACTION_TERMS; k >= 1; k--) t = x + k / t;
  return normalPdf(x) / t;
}

/** 1 − Φ(x) for x ≥ 0. */
function upperTail(x: number): number {
  return x < SERIES_LIMIT ? 0.5 - halfCentral(x) : upperTailFraction(x);
}

/**
 * The standard normal CDF Φ(z). Maximum error, measured against 50-digit mpmath values every 1/16 on [−38, 38]:
 * 2.5e-16 absolute everywhere, and 6e-14 relative for z ≤ 0 down to −37.5 (below that Φ(z) < 1e-308 is a
 * subnormal double and loses digits; it is still far below any significance level). For z > 0 the relative
 * error of 1 − Φ(z) is kept by normalSurvival(−z) = Φ(−z), not by subtracting from 1.
 */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  if (z === Infinity) return 1;
  if (z === -Infinity) return 0;
  if (z >= 0) return z < SERIES_LIMIT ? 0.5 + halfCentral(z) : 1 - upperTailFraction(z);
  return upperTail(-z);
}

/** 1 − Φ(z), accurate for large z where the subtraction would lose every digit: a one-sided "greater" p-value. */
export function normalSurvival(z: number): number {
  return normalCdf(-z);
}
