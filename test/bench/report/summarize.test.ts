// summarize(): medians with the min–max over rounds, the added latency paired within rounds, errors summed.
import { describe, expect, it } from 'vitest';
import type { RoundResult } from '../../../bench/report/model.ts';
import { summarize } from '../../../bench/report/summarize.ts';

function round(
  n: number,
  over: { tput?: number; p50?: number; p99?: number } & Partial<RoundResult> = {},
): RoundResult {
  const { tput = 1000, p50 = 100, p99 = 400, ...rest } = over;
  return {
    round: n,
    throughputPerS: tput,
    latencyUs: { p50, p90: p50 * 2, p99, p999: p99 * 2, max: p99 * 4, mean: p50 },
    percentileCurve: [
      [50, p50],
      [99, p99],
    ],
    requests: tput * 10,
    errors: {},
    ...rest,
  };
}

describe('summarize', () => {
  it('takes the median of the rounds with their min and max, not the mean', () => {
    const s = summarize([
      round(1, { tput: 100, p99: 900 }),
      round(2, { tput: 300, p99: 400 }),
      round(3, { tput: 200, p99: 500 }),
    ]);
    expect(s.throughputPerS).toEqual({ median: 200, min: 100, max: 300, n: 3 });
    expect(s.p99Us).toEqual({ median: 500, min: 400, max: 900, n: 3 });
    expect(s.p999Us.median).toBe(1000);
    expect(s.maxUs).toEqual({ median: 2000, min: 1600, max: 3600, n: 3 });
  });

  it('averages the two middle rounds for an even count', () => {
    const s = summarize([
      round(1, { tput: 100 }),
      round(2, { tput: 400 }),
      round(3, { tput: 200 }),
      round(4, { tput: 300 }),
    ]);
    expect(s.throughputPerS).toEqual({ median: 250, min: 100, max: 400, n: 4 });
  });

  it('pairs added latency with direct within the same round, not median against median', () => {
    const proxy = [
      round(1, { p50: 300, p99: 900 }),
      round(2, { p50: 500, p99: 1000 }),
      round(3, { p50: 400, p99: 700 }),
    ];
    // Listed out of order: pairing goes by round number, never by position.
    const direct = [
      round(3, { p50: 150, p99: 300 }),
      round(1, { p50: 100, p99: 200 }),
      round(2, { p50: 400, p99: 500 }),
    ];
    const s = summarize(proxy, direct);
    // Per round: 200, 100, 250 → median 200. Median minus median would say 400 − 150 = 250.
    expect(s.addedP50Us).toEqual({ median: 200, min: 100, max: 250, n: 3 });
    expect(s.addedP99Us).toEqual({ median: 500, min: 400, max: 700, n: 3 });
  });

  it('pairs only the rounds both sides have and leaves added latency out without a reference', () => {
    const proxy = [round(1, { p50: 300 }), round(2, { p50: 500 }), round(3, { p50: 400 })];
    expect(summarize(proxy, [round(1, { p50: 100 }), round(2, { p50: 200 })]).addedP50Us).toEqual({
      median: 250,
      min: 200,
      max: 300,
      n: 2,
    });
    expect(summarize(proxy).addedP50Us).toBeUndefined();
    expect(summarize(proxy, [round(7)]).addedP99Us).toBeUndefined();
  });

  it('sums errors by kind over rounds and divides by all requests for the error rate', () => {
    const s = summarize([
      round(1, { tput: 100, errors: { timeout: 2 } }),
      round(2, { tput: 100, errors: { timeout: 1, connect: 3 } }),
      round(3, { tput: 200 }),
    ]);
    expect(s.errors).toEqual({ timeout: 3, connect: 3 });
    expect(s.errorRate).toBeCloseTo(6 / 4000, 10);
    expect(summarize([round(1, { tput: 0 })]).errorRate).toBe(0);
  });

  it('summarizes CPU and RSS over the rounds that have them and omits them when none has', () => {
    const s = summarize([
      round(1, { cpuSecondsPer1k: 0.04, peakRssMb: 100 }),
      round(2, { cpuSecondsPer1k: 0.05, peakRssMb: 120 }),
      round(3),
    ]);
    expect(s.cpuSecondsPer1k).toEqual({ median: 0.045, min: 0.04, max: 0.05, n: 2 });
    expect(s.peakRssMb).toEqual({ median: 110, min: 100, max: 120, n: 2 });
    const direct = summarize([round(1), round(2)]);
    expect(direct.cpuSecondsPer1k).toBeUndefined();
    expect(direct.peakRssMb).toBeUndefined();
  });
});
