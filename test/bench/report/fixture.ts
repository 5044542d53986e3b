// A realistic BenchReport for the report tests: direct, skein, nginx and haproxy measured in three interleaved rounds
// of a closed-loop and an open-loop HTTP/1.1 scenario, plus two targets that could not run (with their reasons),
// warnings and generator lag, summarized by the real summarize().
import { PUBLISHED_FIGURES } from '../../../bench/report/published.ts';
import { summarize } from '../../../bench/report/summarize.ts';
import {
  type BenchReport,
  REPORT_SCHEMA,
  type RoundResult,
  type ScenarioSpec,
  type TargetReport,
} from '../../../bench/report/model.ts';

export const SCENARIOS: readonly ScenarioSpec[] = [
  {
    id: 'http1-max',
    protocol: 'http1',
    mode: 'closed',
    engine: 'wrk',
    connections: 50,
    durationS: 10,
    payloadBytes: 0,
  },
  {
    id: 'http1-1000rps',
    protocol: 'http1',
    mode: 'open',
    engine: 'builtin',
    ratePerS: 1000,
    connections: 16,
    durationS: 10,
    payloadBytes: 0,
  },
];

const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];

/** A latency curve that rises with the nines, as real ones do: `baseUs` at p0, `tailFactor` × steeper at the top. */
export function curve(baseUs: number, tailFactor: number): [number, number][] {
  return PERCENTILES.map((p) => {
    const nines = p >= 100 ? 4.5 : -Math.log10(1 - p / 100);
    return [p, Math.round(baseUs * (1 + 0.15 * nines + tailFactor * nines ** 3 * 0.05))];
  });
}

interface Profile {
  readonly throughput: number;
  readonly baseUs: number;
  readonly tail: number;
  readonly cpuSecondsPer1k?: number;
  readonly rssMb?: number;
}

/** One round: the profile moved by `jitter` (±, per round) so medians and ranges differ from any single round. */
export function makeRound(round: number, p: Profile, jitter: number, opts: Partial<RoundResult> = {}): RoundResult {
  const k = 1 + jitter;
  const c = curve(p.baseUs * k, p.tail);
  const at = (pct: number) => c.find(([q]) => q === pct)![1];
  const durationS = 10;
  const requests = Math.round(p.throughput * durationS * (2 - k));
  return {
    round,
    throughputPerS: requests / durationS,
    latencyUs: { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: at(100), mean: at(50) * 1.1 },
    percentileCurve: c,
    requests,
    errors: {},
    ...(p.cpuSecondsPer1k !== undefined && { cpuSecondsPer1k: p.cpuSecondsPer1k * k }),
    ...(p.rssMb !== undefined && { peakRssMb: p.rssMb + round }),
    ...opts,
  };
}

const JITTER = [0.02, -0.03, 0.05];

const PROFILES: Readonly<Record<string, Readonly<Record<string, Profile>>>> = {
  direct: {
    'http1-max': { throughput: 79_000, baseUs: 380, tail: 1 },
    'http1-1000rps': { throughput: 1000, baseUs: 70, tail: 1 },
  },
  skein: {
    'http1-max': { throughput: 24_500, baseUs: 1700, tail: 2, cpuSecondsPer1k: 0.04, rssMb: 120 },
    'http1-1000rps': { throughput: 1000, baseUs: 260, tail: 3, cpuSecondsPer1k: 0.052, rssMb: 96 },
  },
  nginx: {
    'http1-max': { throughput: 76_000, baseUs: 420, tail: 1.2, cpuSecondsPer1k: 0.013, rssMb: 13 },
    'http1-1000rps': { throughput: 1000, baseUs: 150, tail: 1.3, cpuSecondsPer1k: 0.016, rssMb: 12 },
  },
  haproxy: {
    'http1-max': { throughput: 70_000, baseUs: 460, tail: 1.2, cpuSecondsPer1k: 0.014, rssMb: 15 },
    'http1-1000rps': { throughput: 1000, baseUs: 145, tail: 1.2, cpuSecondsPer1k: 0.017, rssMb: 14 },
  },
};

function roundsOf(target: string, scenario: ScenarioSpec): RoundResult[] {
  const p = PROFILES[target][scenario.id];
  const open = scenario.mode === 'open';
  return JITTER.map((j, i) => {
    const round = i + 1;
    // skein's third open-loop round: the generator fell behind (p99 lag ≥ 1 ms), as the warning says.
    const behind = open && target === 'skein' && round === 3;
    const lag = { p50Us: 15 + i, p99Us: behind ? 1400 : 180 + 20 * i, maxUs: 2100 + 100 * i, trustworthy: !behind };
    const errors: Record<string, number> =
      open && target === 'skein' && round === 2 ? { timeout: 2, status_5xx: 1 } : {};
    return makeRound(round, p, j, { errors, ...(open && { lag }) });
  });
}

const LOCAL_DESCRIPTIONS: Readonly<Record<string, string>> = {
  direct: 'wrk straight to the origin',
  skein: 'skein proxy --listen 127.0.0.1:0 (dist/, 1 worker)',
  nginx: 'nginx 1.22.1, proxy_pass with upstream keep-alive, 1 worker',
  haproxy: 'HAProxy 2.6.12, nbthread 1',
};

export function makeReport(): BenchReport {
  const measured = (name: string, mesh: TargetReport['mesh']): TargetReport => ({
    name,
    mesh,
    kind: 'local',
    description: LOCAL_DESCRIPTIONS[name],
    available: true,
    results: SCENARIOS.map((s) => {
      const rounds = roundsOf(name, s);
      return {
        scenario: s.id,
        rounds,
        summary: summarize(rounds, name === 'direct' ? undefined : roundsOf('direct', s)),
      };
    }),
  });
  return {
    schema: REPORT_SCHEMA,
    createdAt: '2025-06-01T10:00:00.000Z',
    command: 'skein bench --local-targets direct,skein,skein-mtls,nginx,haproxy --rounds 3',
    machine: { host: 'bench-1', cpus: 2, cpuModel: 'AMD EPYC 7B13', kernel: '6.1.0-18-amd64', memoryGiB: 7.8 },
    versions: { node: '24.9.0', skein: '0.1.0', nginx: '1.22.1', haproxy: '2.6.12' },
    settings: { rounds: 3, warmupS: 2, proxyCpu: 1, loadCpu: 0, durationS: 10, engine: 'auto' },
    scenarios: SCENARIOS,
    targets: [
      measured('direct', 'baseline'),
      measured('skein', 'skein'),
      {
        name: 'skein-mtls',
        mesh: 'skein',
        kind: 'local',
        description: 'skein with mTLS between two proxies',
        available: false,
        unavailableReason: 'not built yet (mTLS lands with the control plane)',
        results: [],
      },
      measured('nginx', 'baseline'),
      measured('haproxy', 'baseline'),
      {
        name: 'istio@http://10.0.0.7:8080',
        mesh: 'istio',
        kind: 'remote',
        description: 'remote istio target at http://10.0.0.7:8080',
        available: false,
        unavailableReason: 'http://10.0.0.7:8080 did not answer within 10 s (connect ECONNREFUSED)',
        results: [],
      },
    ],
    warnings: [
      'http1-1000rps, skein: the generator fell behind its timetable in 1 of 3 round(s) (lag p99 up to 1.40 ms); ' +
        'those latency figures describe the generator, not the target',
    ],
    published: PUBLISHED_FIGURES,
  };
}
