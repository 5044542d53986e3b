// What the report's tables say, as rows of text cells: report.md renders them as Markdown, report.html as HTML
// tables, so both show the same columns with the same units and the same rounding.
import { formatMicrosSpread, formatNumber, formatSpread } from '../lib/markdown.ts';
import { spread } from '../lib/stats.ts';
import type { LoadProtocol } from '../load/types.ts';
import type { BenchReport, ScenarioSpec, ScenarioSummary, TargetReport, TargetScenarioResult } from './model.ts';

export interface TextTable {
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

const PROTOCOL_NAMES: Readonly<Record<LoadProtocol, string>> = {
  http1: 'HTTP/1.1',
  http2: 'HTTP/2 (h2c)',
  'grpc-unary': 'gRPC unary',
  'grpc-server-stream': 'gRPC server streaming',
  websocket: 'WebSocket echo',
};

/** One line on what a scenario asked for: protocol, loop, rate, connections, duration, payload, engine. */
export function describeScenario(s: ScenarioSpec): string {
  const load =
    s.mode === 'open'
      ? `open loop at ${formatNumber(s.ratePerS ?? Number.NaN)} req/s`
      : 'closed loop (as fast as the target answers)';
  const payload = s.payloadBytes > 0 ? `, ${formatNumber(s.payloadBytes)} B payload` : '';
  const name = PROTOCOL_NAMES[s.protocol] ?? s.protocol;
  const conns = `${s.connections} connections${s.newConnectionPerRequest === true ? ', a new connection per request' : ''}`;
  return `${name}, ${load}, ${conns}, ${s.durationS} s per round${payload}, engine ${s.engine}`;
}

/** The targets that produced figures for a scenario, in report order. */
export function measuredResults(
  report: BenchReport,
  scenarioId: string,
): { readonly target: TargetReport; readonly result: TargetScenarioResult }[] {
  const out: { target: TargetReport; result: TargetScenarioResult }[] = [];
  for (const target of report.targets) {
    const result = target.results.find((r) => r.scenario === scenarioId);
    if (result !== undefined && result.rounds.length > 0) out.push({ target, result });
  }
  return out;
}

/** "0", or "12 (0.10%: timeout 10, connect 2)" with the kinds most frequent first. */
export function formatErrors(summary: ScenarioSummary): string {
  const kinds = Object.entries(summary.errors)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = kinds.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return '0';
  const pct = formatNumber(summary.errorRate * 100, summary.errorRate < 0.001 ? 3 : 2);
  return `${formatNumber(total)} (${pct}%: ${kinds.map(([k, n]) => `${k} ${formatNumber(n)}`).join(', ')})`;
}

const optional = <T>(x: T | undefined, render: (x: T) => string): string => (x === undefined ? '–' : render(x));

export const SCENARIO_HEADERS = [
  'target',
  'req/s',
  'p50',
  'p90',
  'p99',
  'p99.9',
  'max',
  'added p50',
  'added p99',
  'CPU s / 1k req',
  'peak RSS MB',
  'errors',
] as const;

/** Added before "errors" when a target of the scenario counts TLS handshakes (skein-mtls*, nginx-tls). */
export const HANDSHAKES_HEADER = 'TLS handshakes/s';

/** The per-scenario table: one row per measured target, medians with the min–max over rounds. */
export function scenarioTable(report: BenchReport, scenarioId: string): TextTable {
  const results = measuredResults(report, scenarioId);
  const handshakes = results.some(({ result }) => result.summary.handshakesPerS !== undefined);
  const rows = results.map(({ target, result }) => {
    const s = result.summary;
    const row = [
      target.name,
      formatSpread(s.throughputPerS),
      formatMicrosSpread(s.p50Us),
      formatMicrosSpread(s.p90Us),
      formatMicrosSpread(s.p99Us),
      formatMicrosSpread(s.p999Us),
      formatMicrosSpread(s.maxUs),
      optional(s.addedP50Us, (x) => formatMicrosSpread(x, true)),
      optional(s.addedP99Us, (x) => formatMicrosSpread(x, true)),
      optional(s.cpuSecondsPer1k, (x) => formatSpread(x, 3)),
      optional(s.peakRssMb, (x) => formatSpread(x, 0)),
    ];
    if (handshakes) row.push(optional(s.handshakesPerS, (x) => formatSpread(x, 0)));
    row.push(formatErrors(s));
    return row;
  });
  const headers = handshakes ? [...SCENARIO_HEADERS.slice(0, -1), HANDSHAKES_HEADER, 'errors'] : SCENARIO_HEADERS;
  return { headers, rows };
}

/** Targets that were not measured, with the reason. */
export function unavailableTargets(report: BenchReport): { readonly name: string; readonly reason: string }[] {
  return report.targets
    .filter((t) => !t.available)
    .map((t) => ({ name: t.name, reason: t.unavailableReason ?? 'no reason recorded' }));
}

/** Generator lag of open-loop rounds: how far behind its own timetable the load generator fell. */
export function lagTable(report: BenchReport): TextTable {
  const rows: string[][] = [];
  for (const scenario of report.scenarios) {
    for (const { target, result } of measuredResults(report, scenario.id)) {
      const lags = result.rounds.flatMap((r) => (r.lag === undefined ? [] : [r.lag]));
      if (lags.length === 0) continue;
      const behind = lags.filter((l) => !l.trustworthy).length;
      rows.push([
        scenario.id,
        target.name,
        formatMicrosSpread(spread(lags.map((l) => l.p50Us))),
        formatMicrosSpread(spread(lags.map((l) => l.p99Us))),
        formatMicrosSpread(spread(lags.map((l) => l.maxUs))),
        behind === 0 ? `none of ${lags.length}` : `${behind} of ${lags.length}`,
      ]);
    }
  }
  return {
    headers: ['scenario', 'target', 'lag p50', 'lag p99', 'lag max', 'rounds with p99 lag ≥ 1 ms'],
    rows,
  };
}

export const PUBLISHED_HEADERS = ['mesh', 'metric', 'value', 'conditions', 'source'] as const;

/** One line on the machine the run used. */
export function describeMachine(m: BenchReport['machine']): string {
  return `${m.host}: ${m.cpus} CPUs (${m.cpuModel}), kernel ${m.kernel}, ${formatNumber(m.memoryGiB, 1)} GiB RAM`;
}

/** The run's settings as "key value" pairs; nested objects are left to report.json. */
export function describeSettings(settings: BenchReport['settings']): string {
  const named: [string, unknown][] = [
    ['rounds', settings.rounds],
    ['warm-up', `${settings.warmupS} s`],
    ['proxy CPU', settings.proxyCpu],
    ['load CPU', settings.loadCpu],
  ];
  const known = new Set(['rounds', 'warmupS', 'proxyCpu', 'loadCpu']);
  const rest = Object.entries(settings).filter(
    ([k, v]) => !known.has(k) && (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'),
  );
  return [...named, ...rest]
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
}

/** Which reference the "added" columns subtract, as the orchestrator chooses it. */
export const ADDED_LATENCY_NOTE =
  'added p50/p99: the target minus its reference in the same round (local proxies: direct; remote meshes: the ' +
  'remote baseline), median (min–max) over rounds. Latency cells: median (min–max) over rounds.';
