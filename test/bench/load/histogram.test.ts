// Latency summaries and the percentile curve the report charts.
import { describe, expect, it } from 'vitest';
import {
  curvePercentiles,
  lagSummary,
  latencySummary,
  newHistogram,
  percentileCurve,
  recordUs,
} from '../../../bench/load/histogram.ts';

describe('latency histograms', () => {
  it('summarises the fixed percentiles within HDR precision', () => {
    const h = newHistogram();
    for (let us = 1; us <= 10_000; us++) recordUs(h, us);
    const s = latencySummary(h);
    expect(s.p50).toBeGreaterThanOrEqual(4995);
    expect(s.p50).toBeLessThanOrEqual(5005);
    expect(s.p99).toBeGreaterThanOrEqual(9895);
    expect(s.p99).toBeLessThanOrEqual(9905);
    expect(s.max).toBeGreaterThanOrEqual(9995);
    expect(s.mean).toBeCloseTo(5000.5, -1);
  });

  it('makes a 20–60 point curve, ascending, denser in the tail, ending at the max', () => {
    const h = newHistogram();
    for (let i = 0; i < 100_000; i++) recordUs(h, 100 + (i % 1000));
    recordUs(h, 50_000);
    const curve = percentileCurve(h);
    expect(curve.length).toBeGreaterThanOrEqual(20);
    expect(curve.length).toBeLessThanOrEqual(60);
    for (let i = 1; i < curve.length; i++) {
      expect(curve[i][0]).toBeGreaterThan(curve[i - 1][0]);
      expect(curve[i][1]).toBeGreaterThanOrEqual(curve[i - 1][1]);
    }
    expect(curve.at(-1)).toEqual([100, h.maxValue]);
    expect(curve.map(([p]) => p)).toEqual(expect.arrayContaining([50, 90, 99, 99.9]));
    expect(curve.filter(([p]) => p >= 99).length).toBeGreaterThan(curve.filter(([p]) => p < 50).length);
  });

  it('stops the curve where the sample count can no longer separate percentiles', () => {
    expect(curvePercentiles(100).at(-2)).toBeLessThanOrEqual(99);
    expect(curvePercentiles(1_000_000).at(-2)).toBeGreaterThan(99.99);
    expect(percentileCurve(newHistogram())).toEqual([]);
  });

  it('calls a run untrustworthy when the p99 lag reaches 1 ms', () => {
    const fine = newHistogram();
    const late = newHistogram();
    for (let i = 0; i < 1000; i++) {
      recordUs(fine, i < 995 ? 5 : 900);
      recordUs(late, i < 980 ? 5 : 2000);
    }
    expect(lagSummary(fine).trustworthy).toBe(true);
    expect(lagSummary(late)).toMatchObject({ p50Us: 5, trustworthy: false });
    expect(lagSummary(late).p99Us).toBeGreaterThanOrEqual(1000);
  });
});
