// compareReports(): per target × scenario × metric, the change of the median and the verdict, with the default 10%
// threshold, the direction of each metric, a custom threshold, and metrics missing on one side skipped.
import { describe, expect, it } from 'vitest';
import { compareReports, judge } from '../../../bench/report/compare.ts';
import type { BenchReport, ScenarioSummary, Spread } from '../../../bench/report/model.ts';
import { makeReport } from './fixture.ts';

type Patch = { -readonly [K in keyof ScenarioSummary]?: ScenarioSummary[K] | undefined };

/** A copy of `report` with one target × scenario summary changed. */
function withSummary(report: BenchReport, target: string, scenario: string, patch: (s: ScenarioSummary) => Patch) {
  return {
    ...report,
    targets: report.targets.map((t) =>
      t.name !== target
        ? t
        : {
            ...t,
            results: t.results.map((r) =>
              r.scenario !== scenario ? r : { ...r, summary: { ...r.summary, ...patch(r.summary) } as ScenarioSummary },
            ),
          },
    ),
  };
}

/** The spread with its median scaled by `factor` (what compare reads). */
const scaled = (s: Spread | undefined, factor: number): Spread => ({ ...s!, median: s!.median * factor });

function rowOf(c: ReturnType<typeof compareReports>, target: string, scenario: string, metric: string) {
  const row = c.rows.find((r) => r.target === target && r.scenario === scenario && r.metric === metric);
  expect(row, `${target} ${scenario} ${metric}`).toBeDefined();
  return row!;
}

describe('compareReports', () => {
  const base = makeReport();

  it('finds nothing to flag when a report is compared with itself', () => {
    const c = compareReports(base, base);
    expect(c.thresholdPct).toBe(10);
    expect(c.regressions).toBe(0);
    expect(c.improvements).toBe(0);
    expect(c.stable).toBe(c.rows.length);
    // 4 measured targets × 2 scenarios; direct has no added latency, CPU or RSS.
    expect(new Set(c.rows.map((r) => `${r.target}/${r.scenario}`)).size).toBe(8);
    expect(c.rows.filter((r) => r.target === 'direct').map((r) => r.metric)).not.toContain('cpuSecondsPer1k');
  });

  it('flags a p99 more than 10% worse as a regression, critical beyond twice the threshold', () => {
    const cur = withSummary(base, 'skein', 'http1-max', (s) => ({ p99Us: scaled(s.p99Us, 1.25) }));
    const c = compareReports(base, cur);
    const row = rowOf(c, 'skein', 'http1-max', 'p99Us');
    expect(row).toMatchObject({ verdict: 'regression', critical: true, direction: 'lower-is-better' });
    expect(row.changePct).toBeCloseTo(25, 6);
    expect(c.regressions).toBe(1);
    const mild = compareReports(
      base,
      withSummary(base, 'skein', 'http1-max', (s) => ({ p99Us: scaled(s.p99Us, 1.15) })),
    );
    expect(rowOf(mild, 'skein', 'http1-max', 'p99Us')).toMatchObject({ verdict: 'regression', critical: false });
  });

  it('calls changes within the threshold stable, including exactly 10%', () => {
    const cur = withSummary(base, 'nginx', 'http1-max', (s) => ({
      p50Us: scaled(s.p50Us, 1.08),
      throughputPerS: scaled(s.throughputPerS, 0.9),
      peakRssMb: scaled(s.peakRssMb, 1.1),
    }));
    const c = compareReports(base, cur);
    for (const m of ['p50Us', 'throughputPerS', 'peakRssMb'])
      expect(rowOf(c, 'nginx', 'http1-max', m).verdict, m).toBe('stable');
    expect(rowOf(c, 'nginx', 'http1-max', 'p50Us').changePct).toBeCloseTo(8, 6);
    expect(c.regressions).toBe(0);
  });

  it('judges each metric in its own direction: more throughput is better, more latency, CPU, RSS, errors worse', () => {
    const cur = withSummary(base, 'skein', 'http1-1000rps', (s) => ({
      throughputPerS: scaled(s.throughputPerS, 1.15),
      p99Us: scaled(s.p99Us, 0.85),
      cpuSecondsPer1k: scaled(s.cpuSecondsPer1k, 1.12),
      peakRssMb: scaled(s.peakRssMb, 0.8),
      errorRate: s.errorRate + 0.02,
    }));
    const c = compareReports(base, cur);
    const verdict = (m: string) => rowOf(c, 'skein', 'http1-1000rps', m).verdict;
    expect(verdict('throughputPerS')).toBe('improvement');
    expect(verdict('p99Us')).toBe('improvement');
    expect(verdict('cpuSecondsPer1k')).toBe('regression');
    expect(verdict('peakRssMb')).toBe('improvement');
    expect(verdict('errorRate')).toBe('regression');
    const slower = withSummary(base, 'haproxy', 'http1-max', (s) => ({
      throughputPerS: scaled(s.throughputPerS, 0.85),
    }));
    expect(rowOf(compareReports(base, slower), 'haproxy', 'http1-max', 'throughputPerS').verdict).toBe('regression');
  });

  it('uses a custom threshold both ways', () => {
    const cur = withSummary(base, 'skein', 'http1-max', (s) => ({
      p90Us: scaled(s.p90Us, 1.08),
      p99Us: scaled(s.p99Us, 1.25),
    }));
    const strict = compareReports(base, cur, { thresholdPct: 5 });
    expect(strict.thresholdPct).toBe(5);
    expect(rowOf(strict, 'skein', 'http1-max', 'p90Us').verdict).toBe('regression');
    const lenient = compareReports(base, cur, { thresholdPct: 30 });
    expect(rowOf(lenient, 'skein', 'http1-max', 'p99Us').verdict).toBe('stable');
    expect(lenient.regressions).toBe(0);
    expect(() => compareReports(base, cur, { thresholdPct: 0 })).toThrow(/positive/);
  });

  it('skips metrics, scenarios and targets missing on either side instead of failing them', () => {
    let cur = withSummary(base, 'skein', 'http1-max', () => ({ cpuSecondsPer1k: undefined }));
    cur = { ...cur, targets: cur.targets.filter((t) => t.name !== 'haproxy') };
    cur = {
      ...cur,
      targets: [
        ...cur.targets,
        { ...cur.targets.find((t) => t.name === 'nginx')!, name: 'envoy', description: 'envoy 1.30' },
      ],
    };
    const c = compareReports(base, cur);
    expect(
      c.rows.some((r) => r.target === 'skein' && r.scenario === 'http1-max' && r.metric === 'cpuSecondsPer1k'),
    ).toBe(false);
    expect(c.skipped).toContain('skein http1-max CPU s / 1k req: only in the baseline');
    expect(c.skipped).toContain('haproxy: not in the current report');
    expect(c.skipped).toContain('envoy: not in the baseline');
    expect(c.regressions).toBe(0);
  });

  it('treats null medians from a JSON report as absent', () => {
    const fromJson = JSON.parse(
      JSON.stringify(
        withSummary(base, 'skein', 'http1-max', (s) => ({
          peakRssMb: { ...s.peakRssMb!, median: Number.NaN },
        })),
      ),
    ) as BenchReport;
    const c = compareReports(base, fromJson);
    expect(c.skipped).toContain('skein http1-max peak RSS: only in the baseline');
  });
});

describe('judge', () => {
  const lower = { direction: 'lower-is-better', noiseFloor: 0 } as const;
  it('reports a rise from zero as a regression with no percentage', () => {
    expect(judge({ ...lower, noiseFloor: 0.001 }, 0, 0.02, 10)).toEqual({
      changePct: null,
      verdict: 'regression',
      critical: true,
    });
    expect(judge({ ...lower, noiseFloor: 0.001 }, 0, 0.0005, 10).verdict).toBe('stable');
    expect(judge(lower, 0, 0, 10)).toEqual({ changePct: 0, verdict: 'stable', critical: false });
  });
  it('keeps differences under the noise floor stable whatever their percentage', () => {
    expect(judge({ ...lower, noiseFloor: 10 }, 5, 12, 10).verdict).toBe('stable');
    expect(judge({ ...lower, noiseFloor: 10 }, 5, 40, 10).verdict).toBe('regression');
  });
});
