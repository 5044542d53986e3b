import { describe, expect, it } from 'vitest';
import { histogramOf, histogramPercentile, validateHistogram } from '../../src/canary/histogram.ts';
import { seededRandom } from '../lb/support/seeded-random.ts';
import { BOUNDS_MS, logNormalSamples } from './support/latency.ts';

/** Nearest-rank percentile of raw samples: the smallest sample with at least q·n samples at or below it. */
function exactPercentile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
}

function bucketWidthAround(value: number, bounds: readonly number[]): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]) i++;
  if (i === bounds.length) return Infinity;
  return bounds[i] - (i === 0 ? 0 : bounds[i - 1]);
}

describe('histogramPercentile', () => {
  it('interpolates linearly inside a bucket: 10 observations in (10, 20] have p50 = 15 and p10 = 11', () => {
    const h = { bounds: [10, 20], counts: [0, 10, 0] };
    expect(histogramPercentile(h, 0.5)).toEqual({ valueMs: 15, aboveTopBound: false });
    expect(histogramPercentile(h, 0.1)?.valueMs).toBeCloseTo(11, 12);
    expect(histogramPercentile(h, 1)?.valueMs).toBe(20);
  });

  it('starts the first bucket at 0 ms and skips empty buckets', () => {
    expect(histogramPercentile({ bounds: [8, 16], counts: [4, 0, 0] }, 0.5)?.valueMs).toBe(4);
    // Half the mass in (0, 8], half in (16, 32]: p75 is halfway through the upper bucket.
    expect(histogramPercentile({ bounds: [8, 16, 32], counts: [2, 0, 2, 0] }, 0.75)?.valueMs).toBe(24);
  });

  it('reports a percentile in the overflow bucket as the top bound and flags it', () => {
    expect(histogramPercentile({ bounds: [100], counts: [1, 9] }, 0.95)).toEqual({
      valueMs: 100,
      aboveTopBound: true,
    });
  });

  it('is undefined for an empty histogram', () => {
    expect(histogramPercentile({ bounds: [100], counts: [0, 0] }, 0.5)).toBeUndefined();
  });

  it.each([
    [1, 67, 0.35],
    [2, 200, 0.5],
    [3, 30, 1.0],
    [4, 400, 0.25],
  ])(
    'is within one bucket width of the exact percentile of the raw samples (seed %i, median %i ms, σ %s)',
    (seed, median, sigma) => {
      const samples = logNormalSamples(seededRandom(seed), 5000, median, sigma);
      const h = histogramOf(samples, BOUNDS_MS);
      for (const q of [0.5, 0.9, 0.95, 0.99]) {
        const exact = exactPercentile(samples, q);
        const estimate = histogramPercentile(h, q);
        expect(estimate?.aboveTopBound).toBe(false);
        expect(Math.abs((estimate?.valueMs ?? NaN) - exact)).toBeLessThanOrEqual(bucketWidthAround(exact, BOUNDS_MS));
      }
    },
  );
});

describe('histogramOf and validateHistogram', () => {
  it('puts a value equal to a bound in that bound’s bucket and values above all bounds in overflow', () => {
    expect(histogramOf([0, 10, 10.5, 20, 21], [10, 20]).counts).toEqual([2, 2, 1]);
  });

  it('rejects malformed histograms with the field named', () => {
    expect(() => validateHistogram({ bounds: [10, 5], counts: [0, 0, 0] }, 'canary.latency')).toThrow(
      /canary\.latency\.bounds\[1\]/,
    );
    expect(() => validateHistogram({ bounds: [10], counts: [1] })).toThrow(/counts: 1 entries for 1 bounds/);
    expect(() => validateHistogram({ bounds: [10], counts: [1, -1] })).toThrow(/counts\[1\]/);
  });
});
