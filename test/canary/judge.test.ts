import { describe, expect, it } from 'vitest';
import { histogramOf } from '../../src/canary/histogram.ts';
import { DEFAULT_CANARY_POLICY, judgeCanary } from '../../src/canary/judge.ts';
import { BOUNDS_MS, simulateWindow } from './support/latency.ts';

// Windows are simulated with known truth: log-normal latencies (σ = 0.35 unless given) and Bernoulli errors,
// seeded so every run sees the same data. Stage sizes follow the seed's rollout: at 10% the canary gets a
// tenth of the window's requests.
const STABLE = { requests: 1800, errorRate: 0.001, medianMs: 67 };

describe('judgeCanary', () => {
  it('promotes a healthy canary drawn from the same distribution as stable', () => {
    const result = judgeCanary(simulateWindow(1, STABLE, { ...STABLE, requests: 200 }));
    expect(result.verdict).toBe('promote');
    expect(result.reasons[0]).toMatch(/canary error rate .* ≤ 1% and p95 .* ≤ 500 ms/);
    expect(result.reasons[1]).toMatch(/no significant degradation .* 99% confidence/);
    expect(result.stats.comparison.latency.pValue).toBeGreaterThan(0.01);
  });

  it('rolls back a healthy canary in at most 1 of 100 seeded windows (each test errs 1% of the time at most)', () => {
    let rollbacks = 0;
    for (let seed = 100; seed < 200; seed++) {
      const verdict = judgeCanary(simulateWindow(seed, STABLE, { ...STABLE, requests: 200 })).verdict;
      expect(verdict).not.toBe('inconclusive');
      if (verdict === 'rollback') rollbacks++;
    }
    expect(rollbacks).toBeLessThanOrEqual(1);
  });

  it('does not roll back on one or two stray errors: 1 of 200 vs 0 of 1,800 is judged exactly, not by z = 3', () => {
    const healthy = simulateWindow(12, STABLE, { ...STABLE, requests: 200 });
    const result = judgeCanary({
      stable: { ...healthy.stable, errors: 0 },
      canary: { ...healthy.canary, errors: 1 },
    });
    expect(result.stats.comparison.errors.z).toBeGreaterThan(2.9);
    expect(result.stats.comparison.errors.method).toBe('fisher-exact');
    expect(result.stats.comparison.errors.pValue).toBeCloseTo(0.1, 10);
    expect(result.verdict).toBe('promote');
  });

  it('rolls back a canary 3× slower (200 ms vs 67 ms median) by comparison though it passes the absolute gate', () => {
    const result = judgeCanary(simulateWindow(2, STABLE, { ...STABLE, requests: 200, medianMs: 200 }));
    expect(result.verdict).toBe('rollback');
    const { canary, comparison } = result.stats;
    // The absolute numbers alone would promote: errors ≤ 1%, p95 ≤ 500 ms.
    expect(canary.p95).toBeLessThan(DEFAULT_CANARY_POLICY.promoteMaxP95Ms);
    expect(canary.errorRate).toBeLessThanOrEqual(DEFAULT_CANARY_POLICY.promoteMaxErrorRate);
    expect(comparison.latency.pValue).toBeLessThan(1e-10);
    expect(comparison.latency.ratioP50).toBeGreaterThan(2.5); // true ratio 3, read from buckets
    expect(comparison.latency.ratioP50).toBeLessThan(3.5);
    expect(result.reasons).toHaveLength(1);
    expect(result.reasons[0]).toMatch(/canary latency is significantly higher .*Mann-Whitney U = .*p50 .* ms vs .* ms/);
  });

  it('rolls back a canary with 10% errors against stable’s 0.1%, on the threshold and on the comparison', () => {
    const result = judgeCanary(
      simulateWindow(3, { ...STABLE, requests: 4500 }, { ...STABLE, requests: 500, errorRate: 0.1 }),
    );
    expect(result.verdict).toBe('rollback');
    expect(result.stats.canary.errorRate).toBeGreaterThan(0.07);
    expect(result.stats.comparison.errors.z).toBeGreaterThan(5);
    expect(result.reasons.some((r) => /above the 5% rollback threshold/.test(r))).toBe(true);
    expect(result.reasons.some((r) => /error rate .* vs stable .* is significantly higher/.test(r))).toBe(true);
  });

  it('rolls back on the error comparison alone: 0.8% vs 0.05% is under every threshold but 16× worse', () => {
    const result = judgeCanary(
      simulateWindow(
        4,
        { ...STABLE, requests: 18000, errorRate: 0.0005 },
        { ...STABLE, requests: 2000, errorRate: 0.008 },
      ),
    );
    expect(result.stats.canary.errorRate).toBeLessThanOrEqual(0.01);
    expect(result.verdict).toBe('rollback');
    expect(result.reasons).toHaveLength(1);
    expect(result.reasons[0]).toMatch(/significantly higher/);
  });

  it('does not roll back a significant but tiny slowdown (2%): the effect-size guard holds it to a note', () => {
    const stable = { requests: 50000, errorRate: 0.001, medianMs: 100, sigma: 0.5 };
    const result = judgeCanary(simulateWindow(5, stable, { ...stable, medianMs: 102 }));
    expect(result.stats.comparison.latency.pValue).toBeLessThan(0.01);
    expect(result.stats.comparison.latency.ratioP50).toBeLessThan(1.1);
    expect(result.verdict).toBe('promote');
    expect(result.reasons[1]).toMatch(/no degradation beyond the effect-size guards/);
    expect(result.reasons.some((r) => /but neither p50 nor p95 is 1.5× stable's/.test(r))).toBe(true);
  });

  it('is inconclusive with too few requests, naming the counts, even when the numbers look perfect', () => {
    const result = judgeCanary(simulateWindow(6, STABLE, { ...STABLE, requests: 40 }));
    expect(result.verdict).toBe('inconclusive');
    expect(result.reasons).toEqual(['canary: 40 requests in the window, fewer than the 100 needed for a verdict']);
    expect(result.stats.canary.requests).toBe(40);
  });

  it('is inconclusive when stable has too little traffic, but still rolls back a canary bad on its own numbers', () => {
    const thinStable = { ...STABLE, requests: 30 };
    const ok = judgeCanary(simulateWindow(7, thinStable, { ...STABLE, requests: 500 }));
    expect(ok.verdict).toBe('inconclusive');
    expect(ok.reasons).toEqual(['stable: 30 requests in the window, fewer than the 100 needed for a verdict']);
    const bad = judgeCanary(simulateWindow(7, thinStable, { ...STABLE, requests: 500, errorRate: 0.2 }));
    expect(bad.verdict).toBe('rollback');
    expect(bad.reasons[0]).toMatch(/above the 5% rollback threshold/);
  });

  it('holds the stage between the promote and rollback thresholds when stable is no better', () => {
    // 2.5% errors on both: not a rollback (≤ 5%, not worse than stable), not a promotion (> 1%).
    const errors = { requests: 2000, errorRate: 0.025, medianMs: 67 };
    const held = judgeCanary(simulateWindow(8, errors, errors));
    expect(held.verdict).toBe('hold');
    expect(held.reasons[0]).toMatch(/above the 1% needed to promote .* holding the stage/);
    // p95 ≈ 700 ms on both (median 400 ms, σ 0.35): between 500 and 1,000 ms.
    const slow = { requests: 2000, errorRate: 0.001, medianMs: 400 };
    const slowResult = judgeCanary(simulateWindow(9, slow, slow));
    expect(slowResult.verdict).toBe('hold');
    expect(slowResult.reasons[0]).toMatch(/p95 .* above the 500 ms needed to promote/);
  });

  it('rolls back on p95 above 1,000 ms and says when stable is just as slow', () => {
    const slow = { requests: 2000, errorRate: 0.001, medianMs: 900 };
    const result = judgeCanary(simulateWindow(10, slow, slow));
    expect(result.verdict).toBe('rollback');
    expect(result.reasons[0]).toMatch(/canary p95 .* above the 1000 ms rollback threshold \(stable p95 is .* too/);
  });

  it('takes a p95 in the overflow bucket as only a lower limit: rolls back at a threshold equal to the top bound, never promotes', () => {
    // 110 of 200 observations above the top bound (200 ms) in both versions: p95 is somewhere above 200 ms.
    const bounds = [100, 200];
    const version = {
      requests: 200,
      errors: 0,
      latency: histogramOf([...Array(90).fill(50), ...Array(110).fill(5000)], bounds),
    };
    const window = { stable: version, canary: version };
    const atTop = judgeCanary(window, { promoteMaxP95Ms: 150, rollbackP95Ms: 200 });
    expect(atTop.stats.canary.p95AboveTopBound).toBe(true);
    expect(atTop.stats.canary.p95).toBe(200);
    expect(atTop.verdict).toBe('rollback');
    expect(atTop.reasons[0]).toMatch(/p95 ≥ 200.0 ms \(above the top bucket\)/);
    // With the default 500/1,000 ms it might be 300 ms or 3 s: neither rollback nor promotion.
    const unknown = judgeCanary(window);
    expect(unknown.verdict).toBe('hold');
    expect(unknown.reasons[0]).toMatch(/above the top bucket bound 200.0 ms, so it cannot be shown to be ≤ 500 ms/);
  });

  it('applies policy overrides and rejects inconsistent policies and windows', () => {
    const window = simulateWindow(11, STABLE, { ...STABLE, requests: 200 });
    expect(judgeCanary(window, { minRequestsPerVersion: 500 }).verdict).toBe('inconclusive');
    const strict = judgeCanary(window, { confidence: 0.995, promoteMaxErrorRate: 0.005 });
    expect(strict.verdict).toBe('promote');
    expect(strict.reasons[0]).toMatch(/≤ 0\.5% and p95/);
    expect(strict.reasons[1]).toMatch(/at 99\.5% confidence/);
    expect(() => judgeCanary(window, { promoteMaxErrorRate: 0.1, rollbackErrorRate: 0.05 })).toThrow(/policy/);
    expect(() => judgeCanary(window, { confidence: 1 })).toThrow(/confidence/);
    const other = { ...window.canary, latency: histogramOf([1], [1, 2]) };
    expect(() => judgeCanary({ stable: window.stable, canary: other })).toThrow(/bounds/);
    expect(() => judgeCanary({ stable: window.stable, canary: { ...window.canary, errors: 201 } })).toThrow(
      /canary\.errors/,
    );
    expect(BOUNDS_MS.length).toBeGreaterThan(0);
  });
});
