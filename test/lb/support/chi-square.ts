// Pearson's chi-square goodness-of-fit test, for asserting that pick counts match expected shares without
// hard-coding a sequence. The p-value comes from the regularized upper incomplete gamma function.

export interface ChiSquareResult {
  statistic: number;
  degreesOfFreedom: number;
  /** Probability of a statistic at least this large if the counts really follow the expected shares. */
  pValue: number;
}

/** `expectedShares` need not sum to 1; they are normalised against the total of `observedCounts`. */
export function chiSquareTest(observedCounts: readonly number[], expectedShares: readonly number[]): ChiSquareResult {
  if (observedCounts.length !== expectedShares.length || observedCounts.length < 2) {
    throw new Error('chiSquareTest needs at least two categories and one expected share per observed count');
  }
  const total = observedCounts.reduce((sum, count) => sum + count, 0);
  const shareTotal = expectedShares.reduce((sum, share) => sum + share, 0);
  let statistic = 0;
  for (let i = 0; i < observedCounts.length; i++) {
    const expected = (total * expectedShares[i]) / shareTotal;
    statistic += (observedCounts[i] - expected) ** 2 / expected;
  }
  const degreesOfFreedom = observedCounts.length - 1;
  return { statistic, degreesOfFreedom, pValue: upperRegularizedGamma(degreesOfFreedom / 2, statistic / 2) };
}

/** Q(a, x) = Γ(a, x) / Γ(a): a power series below x = a + 1, a continued fraction above (each converges fast there). */
export function upperRegularizedGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const logPrefix = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - sum * Math.exp(logPrefix);
  }
  // Modified Lentz evaluation of the continued fraction for Γ(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let fraction = d;
  for (let n = 1; n < 1000; n++) {
    const an = -n * (n - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    fraction *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return fraction * Math.exp(logPrefix);
}

// Lanczos approximation (g = 7, nine coefficients): about 15 significant digits for a > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

function logGamma(a: number): number {
  if (a < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * a)) - logGamma(1 - a);
  const z = a - 1;
  let series = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) series += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(series);
}
