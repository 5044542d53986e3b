// Report assembly: every planned target is in the report (unavailable ones with their reason), added latency is
// taken against local direct for local proxies and against the remote baseline for remote meshes, and the checks on
// the run (generator lag, probe vs /proc, error rate, protocols a target cannot forward) become warnings.
import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../bench/load/types.ts';
import { assembleReport, type RunMeta } from '../../bench/run/assemble.ts';
import { type MeasuredRound, roundResult } from '../../bench/run/measure.ts';
import { parseRunOptions, type RunOptions } from '../../bench/run/options.ts';
import { emptyCollected } from '../../bench/run/phase.ts';
import { planRun } from '../../bench/run/plan.ts';

const PROJECT = new URL('../..', import.meta.url).pathname;
const INSTALLED = { nginx: true, haproxy: true, wrk: true, taskset: true };

function load(p50: number, extra: Partial<LoadResult> = {}): LoadResult {
  return {
    engine: 'builtin',
    protocol: 'http1',
    mode: 'open',
    durationS: 1,
    requests: 1000,
    ok: 1000,
    errors: {},
    throughputPerS: 1000,
    latencyUs: { p50, p90: p50, p99: p50 * 2, p999: p50 * 3, max: p50 * 4, mean: p50 },
    percentileCurve: [],
    ...extra,
  };
}

function measured(round: number, p50: number, extra: Partial<LoadResult> = {}): MeasuredRound {
  const l = load(p50, extra);
  return { result: roundResult(round, l, {}), load: l, procCpuUsPerRequest: Number.NaN };
}

const META: RunMeta = {
  createdAt: '2026-11-23T00:00:00.000Z',
  command: 'skein bench',
  machine: { host: 'h', cpus: 2, cpuModel: 'cpu', kernel: 'Linux', memoryGiB: 4 },
  versions: { node: 'v24' },
  settings: { rounds: 2, warmupS: 1 },
};

describe('assembling the report', () => {
  const opts = parseRunOptions([
    '--local-targets',
    'direct,skein,haproxy,naive-undici',
    '--scenarios',
    'http1-open,websocket-open',
    '--remote',
    'base=baseline:http://b:1',
    '--remote',
    'istio=istio:http://i:1',
  ]) as RunOptions;
  const plan = planRun(opts, { ...INSTALLED, haproxy: false }, PROJECT);
  const scenarios = plan.phases.flatMap((p) => p.scenarios.map((s) => s.spec));
  const collected = emptyCollected();
  const put = (target: string, scenario: string, rounds: MeasuredRound[]) => {
    const m = collected.rounds.get(target) ?? new Map();
    m.set(scenario, rounds);
    collected.rounds.set(target, m);
  };
  put('direct', 'http1-1000rps', [measured(1, 100), measured(2, 120)]);
  put('skein', 'http1-1000rps', [
    measured(1, 300, { lag: { p50Us: 5, p99Us: 2500, maxUs: 4000, trustworthy: false } }),
    {
      ...measured(2, 350),
      procCpuUsPerRequest: 50,
      result: {
        ...roundResult(2, load(350), { cpuSeconds: 0.05 }),
        probe: { cpuUsPerRequest: 80, socketCallsPerRequest: 2, newUpstreamConnsPerRequest: 0, retransmits: 0 },
      },
    },
  ]);
  put('base', 'http1-1000rps', [measured(1, 1000), measured(2, 1000)]);
  put('istio', 'http1-1000rps', [measured(1, 1500, { errors: { status_5xx: 50 } }), measured(2, 1700)]);
  collected.unavailable.set('naive-undici', 'did not answer 200 on 127.0.0.1:1: process exited');
  const report = assembleReport(plan, scenarios, collected, META);
  const target = (name: string) => report.targets.find((t) => t.name === name)!;

  it('lists every target, the unavailable ones with their reason and no results', () => {
    expect(report.targets.map((t) => t.name)).toEqual(['direct', 'skein', 'haproxy', 'naive-undici', 'base', 'istio']);
    expect(target('haproxy')).toMatchObject({ available: false, results: [] });
    expect(target('haproxy').unavailableReason).toMatch(/haproxy is not installed/);
    expect(target('naive-undici')).toMatchObject({
      available: false,
      unavailableReason: expect.stringMatching(/did not answer/),
    });
    expect(target('istio')).toMatchObject({ kind: 'remote', mesh: 'istio', available: true });
    expect(report.published.length).toBeGreaterThan(0);
  });

  it('adds latency over local direct for local proxies and over the remote baseline for remote meshes', () => {
    expect(target('skein').results[0].summary.addedP50Us).toMatchObject({ min: 200, max: 230, n: 2 });
    expect(target('direct').results[0].summary.addedP50Us).toBeUndefined();
    expect(target('istio').results[0].summary.addedP50Us).toMatchObject({ min: 500, max: 700 });
    expect(target('base').results[0].summary.addedP50Us).toBeUndefined();
  });

  it('warns about generator lag, probe disagreement, error rates and protocols a target cannot forward', () => {
    const w = report.warnings.join('\n');
    expect(w).toMatch(
      /http1-1000rps, skein: the generator fell behind its timetable in 1 of 2 round\(s\) \(lag p99 up to 2.50 ms\)/,
    );
    expect(w).toMatch(
      /http1-1000rps, skein, round 2: eBPF on-CPU time \(80.0 µs\/request\) and \/proc \(50.0 µs\/request\) differ/,
    );
    expect(w).toMatch(/http1-1000rps, istio: 50 of 2000 requests failed \(2.5%\)/);
    expect(w).not.toMatch(/naive-undici forwards/); // unavailable: its reason says enough
    expect(report.warnings.filter((x) => x.includes('direct'))).toEqual([]);
  });
});
