import { describe, expect, it } from 'vitest';
import { errorRateTest, fisherExactGreater, mannWhitneyTest } from '../../src/canary/compare.ts';
import { histogramOf, type LatencyHistogram } from '../../src/canary/histogram.ts';
import { normalCdf } from '../../src/canary/normal.ts';
import { seededRandom } from '../lb/support/seeded-random.ts';
import { BOUNDS_MS, logNormalSamples } from './support/latency.ts';

/** U for xs against ys by looking at every pair: 1 when x > y, ½ when they tie. */
function bruteForceU(xs: number[], ys: number[]): number {
  let u = 0;
  for (const x of xs) for (const y of ys) u += x > y ? 1 : x === y ? 0.5 : 0;
  return u;
}

/** U from the rank-sum formula with midranks: R₁ − n₁(n₁ + 1)/2. */
function rankSumU(xs: number[], ys: number[]): number {
  const all = [...xs.map((v) => ({ v, x: true })), ...ys.map((v) => ({ v, x: false }))].sort((a, b) => a.v - b.v);
  let r1 = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const midrank = (i + 1 + j) / 2; // ranks i+1 … j share their mean
    for (let k = i; k < j; k++) if (all[k].x) r1 += midrank;
    i = j;
  }
  return r1 - (xs.length * (xs.length + 1)) / 2;
}

/** Every way to choose k of n indexes. */
function* combinations(n: number, k: number, start = 0, chosen: number[] = []): Generator<number[]> {
  if (chosen.length === k) {
    yield chosen;
    return;
  }
  for (let i = start; i < n; i++) yield* combinations(n, k, i + 1, [...chosen, i]);
}

describe('mannWhitneyTest', () => {
  // Each distinct value gets its own bucket, so the histogram loses nothing and U must equal the pairwise count.
  const canary = [19, 22, 16, 29, 24, 22];
  const stable = [20, 11, 17, 12, 22];
  const bounds = [...new Set([...canary, ...stable])].sort((a, b) => a - b);

  it('computes U from bucket counts equal to the brute-force pairwise count and the rank-sum formula', () => {
    const test = mannWhitneyTest(histogramOf(canary, bounds), histogramOf(stable, bounds));
    expect(bruteForceU(canary, stable)).toBe(24); // by hand: 3 + 4½ + 2 + 5 + 5 + 4½, each 22 tying the stable 22
    expect(test.u).toBe(bruteForceU(canary, stable));
    expect(test.u).toBe(rankSumU(canary, stable));
  });

  it('treats observations sharing a coarse bucket as ties, as a pairwise count on bucket indexes does', () => {
    const coarse = [15, 20, 25];
    const bucket = (v: number) => {
      const i = coarse.findIndex((b) => v <= b);
      return i === -1 ? coarse.length : i; // above every bound: the overflow bucket
    };
    const u = bruteForceU(canary.map(bucket), stable.map(bucket));
    expect(mannWhitneyTest(histogramOf(canary, coarse), histogramOf(stable, coarse)).u).toBe(u);
  });

  it('uses the exact null variance of U with ties: z matches the permutation distribution’s mean and variance', () => {
    // Pooled observations by bucket index, with heavy ties; every split into 4 "canary" and 6 "stable" is
    // equally likely under the null, so enumerating the 210 splits gives U's exact mean and variance.
    const pooled = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
    const splits = [...combinations(pooled.length, 4)];
    const us = splits.map((idx) => {
      const xs = idx.map((i) => pooled[i]);
      const ys = pooled.filter((_, i) => !idx.includes(i));
      return bruteForceU(xs, ys);
    });
    const mean = us.reduce((a, b) => a + b, 0) / us.length;
    const variance = us.reduce((a, b) => a + (b - mean) ** 2, 0) / us.length;
    const hist = (vs: number[]) => ({
      bounds: [0, 1, 2],
      counts: [0, 1, 2, 3].map((b) => vs.filter((v) => v === b).length),
    });
    const xs = [2, 2, 3, 1];
    const ys = [0, 0, 0, 1, 2, 2];
    const test = mannWhitneyTest(hist(xs), hist(ys));
    expect(mean).toBeCloseTo(12, 12); // n₁n₂/2
    expect(test.z).toBeCloseTo((bruteForceU(xs, ys) - mean) / Math.sqrt(variance), 12);
    expect(test.pValue).toBeCloseTo(1 - normalCdf(test.z), 14);
  });

  it('swapping canary and stable flips z and turns the one-sided p into 1 − p', () => {
    const random = seededRandom(7);
    const a = histogramOf(logNormalSamples(random, 400, 100, 0.4), BOUNDS_MS);
    const b = histogramOf(logNormalSamples(random, 300, 110, 0.4), BOUNDS_MS);
    const ab = mannWhitneyTest(a, b);
    const ba = mannWhitneyTest(b, a);
    expect(ab.u + ba.u).toBe(400 * 300);
    expect(ba.z).toBeCloseTo(-ab.z, 12);
    expect(ab.pValue + ba.pValue).toBeCloseTo(1, 12);
    expect(ab.pValue).toBeGreaterThan(0.5); // a is drawn faster than b, so "a slower" is not supported
  });

  it('is calibrated: with both versions from one distribution, about 5% of windows have p < 0.05', () => {
    const random = seededRandom(2024);
    let significant = 0;
    const runs = 400;
    for (let i = 0; i < runs; i++) {
      const a = histogramOf(logNormalSamples(random, 200, 80, 0.5), BOUNDS_MS);
      const b = histogramOf(logNormalSamples(random, 300, 80, 0.5), BOUNDS_MS);
      if (mannWhitneyTest(a, b).pValue < 0.05) significant++;
    }
    // Binomial(400, 0.05): mean 20, sd 4.4; the band is about ±3 sd.
    expect(significant).toBeGreaterThanOrEqual(7);
    expect(significant).toBeLessThanOrEqual(33);
  });

  it('gives z = 0 and p = ½ when all observations share one bucket, and refuses different bounds', () => {
    const one: LatencyHistogram = { bounds: [10, 20], counts: [0, 5, 0] };
    expect(mannWhitneyTest(one, { bounds: [10, 20], counts: [0, 7, 0] })).toEqual({ u: 17.5, z: 0, pValue: 0.5 });
    expect(() => mannWhitneyTest(one, { bounds: [10, 30], counts: [0, 7, 0] })).toThrow(/same bucket bounds/);
  });
});

describe('errorRateTest', () => {
  it('matches a hand-worked example: 20/100 vs 10/100 gives z = 0.1 / √(0.15·0.85·0.02) ≈ 1.9803', () => {
    const test = errorRateTest({ requests: 100, errors: 20 }, { requests: 100, errors: 10 });
    expect(test.z).toBeCloseTo(1.9803, 4);
    expect(test.pValue).toBeCloseTo(0.02384, 4); // 1 − Φ(1.9803)
  });

  it('squares to the Pearson chi-square of the 2×2 table', () => {
    const cases = [
      [37, 1200, 12, 4000],
      [5, 80, 1, 900],
      [100, 1000, 1, 1000],
    ];
    for (const [e1, n1, e2, n2] of cases) {
      const [a, b, c, d] = [e1, n1 - e1, e2, n2 - e2];
      const n = n1 + n2;
      const chiSquare = (n * (a * d - b * c) ** 2) / ((a + b) * (c + d) * (a + c) * (b + d));
      const { z } = errorRateTest({ requests: n1, errors: e1 }, { requests: n2, errors: e2 });
      expect(z * z).toBeCloseTo(chiSquare, 9);
      expect(Math.sign(z)).toBe(Math.sign(e1 / n1 - e2 / n2));
    }
  });

  it('is one-sided: swapping the versions gives 1 − p', () => {
    const ab = errorRateTest({ requests: 500, errors: 30 }, { requests: 4500, errors: 200 });
    const ba = errorRateTest({ requests: 4500, errors: 200 }, { requests: 500, errors: 30 });
    expect(ab.method).toBe('z-test');
    expect(ba.z).toBeCloseTo(-ab.z, 12);
    expect(ab.pValue + ba.pValue).toBeCloseTo(1, 12);
  });

  it('switches to Fisher’s exact test when an expected count is under 5: 1 error of 200 vs 0 of 1,800 is p = 0.1', () => {
    // z = 3.0 would claim p ≈ 0.001; exactly, the single error lands among the canary's 200 of 2,000 requests
    // with probability 200/2000.
    const test = errorRateTest({ requests: 200, errors: 1 }, { requests: 1800, errors: 0 });
    expect(test.z).toBeGreaterThan(2.9);
    expect(test.method).toBe('fisher-exact');
    expect(test.pValue).toBeCloseTo(0.1, 12);
  });
  it('gives z = 0 and p = ½ when neither version has an error', () => {
    expect(errorRateTest({ requests: 500, errors: 0 }, { requests: 900, errors: 0 })).toMatchObject({
      z: 0,
      pValue: 0.5,
    });
  });
});

/** C(n, k) exactly. */
function choose(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 0; i < k; i++) r = (r * BigInt(n - i)) / BigInt(i + 1);
  return r;
}

describe('fisherExactGreater', () => {
  it('gives the lady-tasting-tea values: all 4 of 4 right is 1/70, 3 or more is 17/70', () => {
    // 8 cups, 4 with milk first; "errors" are the cups she calls milk-first, "canary" the truly milk-first cups.
    expect(fisherExactGreater({ requests: 4, errors: 4 }, { requests: 4, errors: 0 })).toBeCloseTo(1 / 70, 14);
    expect(fisherExactGreater({ requests: 4, errors: 3 }, { requests: 4, errors: 1 })).toBeCloseTo(17 / 70, 14);
  });

  it('matches the hypergeometric tail summed from exact binomial coefficients', () => {
    const cases = [
      [3, 40, 1, 60],
      [0, 25, 4, 75],
      [7, 30, 2, 30],
      [5, 200, 9, 1800],
    ];
    for (const [e1, n1, e2, n2] of cases) {
      const total = e1 + e2;
      let upper = 0n;
      for (let x = e1; x <= Math.min(total, n1); x++) upper += choose(n1, x) * choose(n2, total - x);
      const exact = Number((upper * 10n ** 18n) / choose(n1 + n2, total)) / 1e18;
      expect(fisherExactGreater({ requests: n1, errors: e1 }, { requests: n2, errors: e2 })).toBeCloseTo(exact, 12);
    }
  });

  it('keeps large windows finite: 60 errors in 5,000 vs 100 in 45,000 gives a tiny but positive p', () => {
    const p = fisherExactGreater({ requests: 5000, errors: 60 }, { requests: 45000, errors: 100 });
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-10);
  });
});
