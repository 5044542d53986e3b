// The core benchmark's data model (what bench-results/core-*.json holds) and its Markdown report:
// one table with a row per target, per-round ratios for skein, checks that the run was sound, and how it was measured.

import { formatMicrosSpread, formatNumber, formatSpread, renderTable } from './lib/markdown.ts';
import type { MeasuredRun } from './lib/measure.ts';
import type { ProbeStatus } from './lib/probes.ts';
import { pairByRound, spread } from './lib/stats.ts';
import type { TargetName } from './lib/targets.ts';

export interface CoreSettings {
  readonly targets: readonly TargetName[];
  readonly rounds: number;
  readonly connections: number;
  readonly durationS: number;
  readonly oneConnDurationS: number;
  readonly warmupS: number;
  readonly firstWarmupS: number;
  readonly proxyCpu: number;
  readonly loadCpu: number;
  readonly skeinCmd: string;
}

export interface CoreMeta {
  readonly date: string;
  readonly host: string;
  readonly versions: Readonly<Record<string, string>>;
  readonly clockTicksPerSecond: number;
  /** Busy % of the load and proxy CPUs over a short sample before anything was started. */
  readonly backgroundBusyPct: { readonly loadCpu: number; readonly proxyCpu: number };
  readonly command: string;
  readonly measureSeconds: number;
}

/** A target that was started and measured (or at least started). */
export interface TargetInfo {
  readonly name: TargetName;
  readonly description: string;
  /** The origin's new connections during the first warm-up: how many upstream connections the proxy pooled. */
  readonly firstWarmup?: MeasuredRun;
}

/** One target in one round: warm-up (discarded), then the two measured runs. */
export interface Visit {
  readonly round: number;
  readonly target: TargetName;
  readonly max?: MeasuredRun;
  readonly oneConn?: MeasuredRun;
  /** VmHWM summed over the proxy's processes after the visit, kB; NaN for direct. */
  readonly peakRssKb?: number;
  /** Why this visit produced no numbers. */
  readonly error?: string;
}

export interface CoreResult {
  readonly settings: CoreSettings;
  readonly meta: CoreMeta;
  readonly measured: readonly TargetInfo[];
  readonly skipped: readonly { readonly target: TargetName; readonly reason: string }[];
  readonly visits: readonly Visit[];
  /** Whether the eBPF probes ran (figures in each visit's `max.probe`); absent in results from before they existed. */
  readonly probes?: ProbeStatus;
}

/** Probe on-CPU time and /proc utime+stime must agree within this fraction. */
const PROBE_CPU_TOLERANCE = 0.1;

/** Above this, the report warns that the machine was busy before the benchmark started. */
const BACKGROUND_BUSY_WARN_PCT = 10;

/** Points of the proxy core used by other processes during a run above which the report warns. */
const CONTENDED_PCT = 15;

type Metric = (v: Visit) => number;
const rps: Metric = (v) => v.max?.wrk.requestsPerSecond ?? Number.NaN;
const cpuPerReq: Metric = (v) => v.max?.proxyCpuUsPerRequest ?? Number.NaN;
const p50One: Metric = (v) => v.oneConn?.wrk.p50Us ?? Number.NaN;
const p99One: Metric = (v) => v.oneConn?.wrk.p99Us ?? Number.NaN;

const perRequest = (v: Visit, f: (r: MeasuredRun) => number) =>
  v.max?.probe !== undefined && v.max.wrk.requests > 0 ? f(v.max) / v.max.wrk.requests : Number.NaN;
const probeCpuPerReq: Metric = (v) => perRequest(v, (r) => r.probe!.onCpuNs / 1000);
const socketCallsPerReq: Metric = (v) => perRequest(v, (r) => r.probe!.sendCalls + r.probe!.recvCalls);
const connectsPerReq: Metric = (v) => perRequest(v, (r) => r.probe!.connects);
const retransmits: Metric = (v) => v.max?.probe?.retransmits ?? Number.NaN;
/** Probe CPU ÷ /proc CPU over the same run. */
const probeCpuRatio: Metric = (v) => probeCpuPerReq(v) / cpuPerReq(v);

function visitsOf(result: CoreResult, target: TargetName): Visit[] {
  return result.visits.filter((v) => v.target === target && v.error === undefined);
}

const over = (visits: readonly Visit[], metric: Metric) => spread(visits.map(metric));

/** Per-round `combine(target, reference)` paired by round, as a spread over rounds. */
function versus(result: CoreResult, target: TargetName, ref: TargetName, combine: (a: Visit, b: Visit) => number) {
  return spread(pairByRound(visitsOf(result, target), visitsOf(result, ref), combine));
}

function tableRows(result: CoreResult): string[][] {
  const { settings } = result;
  const hasDirect = result.measured.some((t) => t.name === 'direct');
  const rows: string[][] = [];
  for (const name of settings.targets) {
    const skipped = result.skipped.find((s) => s.target === name);
    if (skipped !== undefined) {
      rows.push([name, 'skipped (see below)', ...Array<string>(7).fill('–')]);
      continue;
    }
    const vs = visitsOf(result, name);
    const isDirect = name === 'direct';
    const added = (metric: Metric) => {
      if (isDirect) return 'reference';
      if (!hasDirect) return '– (no direct)';
      return formatMicrosSpread(
        versus(result, name, 'direct', (a, b) => metric(a) - metric(b)),
        true,
      );
    };
    rows.push([
      name,
      formatSpread(over(vs, rps)),
      isDirect ? '– (no proxy)' : formatSpread(over(vs, cpuPerReq), 1),
      formatMicrosSpread(over(vs, p50One)),
      formatMicrosSpread(over(vs, p99One)),
      added(p50One),
      added(p99One),
      isDirect ? '–' : formatSpread(over(vs, (v) => (v.peakRssKb ?? Number.NaN) / 1024)),
      // wrk's own client connections, not upstream ones: shown only to confirm the counter works.
      isDirect
        ? `${formatNumber(over(vs, (v) => v.max?.upstreamConnsOpened ?? Number.NaN).median)} (wrk's own)`
        : formatSpread(over(vs, (v) => v.max?.upstreamConnsOpened ?? Number.NaN)),
    ]);
  }
  return rows;
}

/** The kernel's view of the @N run from the eBPF probes, beside the /proc CPU figure it must agree with. */
function probeTable(result: CoreResult): string[] {
  const headers = [
    'target',
    'CPU µs/req (/proc)',
    'CPU µs/req (probe)',
    'probe ÷ /proc',
    'socket calls/req',
    'new upstream conns/req',
    'retransmits (new sockets only)',
  ];
  const rows = result.measured.map((t) => {
    if (t.name === 'direct') return [t.name, '– (no proxy)', ...Array<string>(5).fill('–')];
    const vs = visitsOf(result, t.name);
    return [
      t.name,
      formatSpread(over(vs, cpuPerReq), 1),
      formatSpread(over(vs, probeCpuPerReq), 1),
      formatSpread(over(vs, probeCpuRatio), 3),
      formatSpread(over(vs, socketCallsPerReq), 2),
      formatSpread(over(vs, connectsPerReq), 4),
      formatSpread(over(vs, retransmits)),
    ];
  });
  return [
    `Kernel view of the @${result.settings.connections} run (eBPF probes on the proxy's processes):`,
    '',
    renderTable(headers, rows),
  ];
}

function probeCheckLines(result: CoreResult): string[] {
  const status = result.probes;
  if (status === undefined) return [];
  if (!status.used) {
    return [`- eBPF probes: not used (${status.reason ?? 'no proxy target was measured'}); /proc figures only.`];
  }
  const lines: string[] = [];
  if (status.reason !== undefined) lines.push(`- eBPF probes: ${status.reason}`);
  const proxies = result.measured.filter((t) => t.name !== 'direct');
  const verdicts = proxies.map((t) => {
    const ratios = visitsOf(result, t.name).map(probeCpuRatio);
    const s = spread(ratios);
    if (s.n === 0) return { ok: false, text: `${t.name} no probe figures` };
    const ok = s.n === ratios.length && ratios.every((r) => Math.abs(r - 1) <= PROBE_CPU_TOLERANCE);
    return { ok, text: `${t.name} ${formatSpread(s, 3)} ${ok ? 'ok' : 'OUTSIDE ±10%'}` };
  });
  const allOk = verdicts.length > 0 && verdicts.every((v) => v.ok);
  lines.push(
    `- Probe CPU vs /proc CPU (probe on-CPU time ÷ utime+stime, same run; must be within ±${PROBE_CPU_TOLERANCE * 100}% in every round): ` +
      `${allOk ? 'agree' : '**DISAGREE**'}: ${verdicts.map((v) => v.text).join(', ')}.`,
  );
  const lost = result.visits.reduce((n, v) => n + (v.max?.probe?.lostEvents ?? 0), 0);
  if (lost > 0) lines.push(`- **Warning:** bpftrace lost ${formatNumber(lost)} events: the probe figures undercount.`);
  for (const v of result.visits) {
    if (v.max?.probeError !== undefined) lines.push(`- Probe error: ${v.target} round ${v.round}: ${v.max.probeError}`);
  }
  for (const w of status.warnings) lines.push(`- Probe warning: ${w}`);
  return lines;
}

function ratioLine(
  result: CoreResult,
  label: string,
  ref: TargetName,
  combine: (a: Visit, b: Visit) => number,
): string {
  const missing = ['skein', ref].filter((t) => !result.measured.some((m) => m.name === t));
  if (missing.length > 0) return `- ${label}: n/a (${missing.join(' and ')} not measured in this run)`;
  const s = versus(result, 'skein', ref, combine);
  return `- ${label}: ${formatSpread(s, 2)}${s.n > 1 ? ` over ${s.n} rounds` : ''}`;
}

function checkLines(result: CoreResult): string[] {
  const lines: string[] = [];
  const per = (fn: (t: TargetInfo, vs: Visit[]) => string) =>
    result.measured.map((t) => `${t.name} ${fn(t, visitsOf(result, t.name))}`).join(', ');
  const failed = result.visits.filter((v) => v.error !== undefined);
  for (const v of failed) lines.push(`- FAILED: ${v.target} in round ${v.round}: ${v.error}`);
  const errors = result.visits.flatMap((v) =>
    [v.max, v.oneConn].flatMap((r) => (r !== undefined && r.wrk.errorCount > 0 ? [{ v, r }] : [])),
  );
  lines.push(
    errors.length === 0
      ? '- Errors: none (no socket errors, no HTTP status ≥ 400, in any measured run).'
      : `- ERRORS: ${errors.map(({ v, r }) => `${v.target} round ${v.round}: ${JSON.stringify(r.wrk.errors)}`).join('; ')}`,
  );
  const clk = result.meta.clockTicksPerSecond;
  // The proxy's own CPU as a share of wall time: set against "core busy", it shows what other processes took.
  const ownSharePct = (r: MeasuredRun) => (100 * r.proxyCpuTicks) / clk / (r.wrk.durationUs / 1e6);
  const median = (vs: Visit[], metric: Metric, decimals = 0) => formatNumber(over(vs, metric).median, decimals);
  lines.push(
    `- During the @${result.settings.connections} run, median % — proxy's own CPU / whole proxy core busy / load core busy: ` +
      per((t, vs) => {
        const own = t.name === 'direct' ? '–' : median(vs, (v) => (v.max ? ownSharePct(v.max) : Number.NaN));
        const core = median(vs, (v) => v.max?.proxyCpuBusyPct ?? Number.NaN);
        return `${own}/${core}/${median(vs, (v) => v.max?.loadCpuBusyPct ?? Number.NaN)}`;
      }) +
      '. A proxy near 100% of its core is the bottleneck; a load core near 100% means wrk + origin limit the number; ' +
      "core busy well above the proxy's own share means other processes (or interrupt work not charged to the proxy) used that core.",
  );
  const contended = result.measured
    .filter((t) => t.name !== 'direct')
    .map((t) => {
      const vs = visitsOf(result, t.name);
      const other = over(vs, (v) => (v.max ? v.max.proxyCpuBusyPct - ownSharePct(v.max) : Number.NaN)).max;
      return { name: t.name, other };
    })
    .filter((c) => c.other >= CONTENDED_PCT);
  if (contended.length > 0) {
    lines.push(
      `- **Warning:** CPU ${result.settings.proxyCpu} was busy with work not charged to the proxy during the @${result.settings.connections} run ` +
        `(${contended.map((c) => `${c.name}: up to ${formatNumber(c.other)}%`).join(', ')} of the core): ` +
        'most likely other processes on this machine, so req/s and latency of those targets are understated; ' +
        "CPU µs/req is still the proxy's own.",
    );
  }
  lines.push(
    `- Origin requests ÷ client requests in that run (1.000 = each request forwarded once; up to ${result.settings.connections} ` +
      'requests still in flight when wrk stops reach the origin but are not counted by wrk): ' +
      per((_, vs) => median(vs, (v) => (v.max ? v.max.originRequests / v.max.wrk.requests : Number.NaN), 3)) +
      '.',
  );
  lines.push(
    '- Upstream connections opened during the first warm-up, i.e. the pool each proxy built: ' +
      per((t) => formatNumber(t.firstWarmup?.upstreamConnsOpened ?? Number.NaN)) +
      ` (direct: wrk's ${result.settings.connections} client connections).`,
  );
  lines.push(...probeCheckLines(result));
  const steal = Math.max(...result.visits.flatMap((v) => [v.max?.loadCpuStealPct ?? 0, v.max?.proxyCpuStealPct ?? 0]));
  if (steal >= 1)
    lines.push(`- Steal time reached ${formatNumber(steal, 1)}% of a CPU in some run: a noisy neighbour on this VM.`);
  return lines;
}

function howMeasured(result: CoreResult): string[] {
  const s = result.settings;
  const m = result.meta;
  return [
    '**How measured.** ' +
      `Origin: its own nginx, 1 worker, answering every request with \`return 200 "ok\\n"\` over keep-alive, pinned to CPU ${s.loadCpu} ` +
      `together with wrk (-t1). Every proxy (all its processes and threads) is pinned with taskset to CPU ${s.proxyCpu} and forwards to the origin ` +
      'over HTTP/1.1 with upstream keep-alive; "direct" is wrk straight to the origin, so there one core runs both client and server.',
    `- Targets: ${result.measured.map((t) => `**${t.name}**: ${t.description}`).join('; ')}.`,
    `- Order: all targets start together and stay up; each gets a ${s.firstWarmupS} s warm-up first. Rounds interleave the targets ` +
      `(A B C … A B C …); per visit: ${s.warmupS} s warm-up @${s.connections} conns (discarded), then ` +
      `\`wrk -t1 -c${s.connections} -d${s.durationS}s --latency\` (req/s, CPU), then \`wrk -t1 -c1 -d${s.oneConnDurationS}s --latency\` (latency). ` +
      'Numbers come from wrk itself via bench/lib/wrk-summary.lua (request count, duration, HdrHistogram percentiles in µs, ' +
      'latency from writing a request to the end of its response).',
    `- CPU µs/req: utime+stime from /proc/PID/stat of the proxy process and all its descendants (every thread included), read just before and ` +
      `after the @${s.connections} run, in clock ticks of 1/${m.clockTicksPerSecond} s, divided by the requests wrk completed.`,
    "- Added latency: per round, the target's p50/p99 at 1 connection minus direct's in the same round; then median (min to max) over rounds. " +
      'Tail differences between single runs are noisy: trust a gap only if it holds in every round.',
    "- Peak RSS: VmHWM from /proc/PID/status summed over the proxy's processes after the visit (nginx: master + worker, so shared pages count twice).",
    `- Upstream conns opened: connections the origin accepted (its stub_status, on a second port) during the @${s.connections} run, ` +
      'after warm-up; 0 means every request went over already-pooled keep-alive connections.',
    ...(result.probes?.used === true
      ? [
          `- Kernel view: during each @${s.connections} run a bpftrace program (probes/, all scripts) is attached to the PIDs of the proxy's process tree ` +
            '(the same PIDs the /proc figures sum). It is started, and its attachment awaited, before wrk starts and stopped (SIGINT) after wrk ' +
            'exits, so its ~1 s startup is outside the window; bpftrace itself is pinned to the load CPU. ' +
            'CPU µs/req (probe): on-CPU ns from `sched_switch` plus a 99 Hz tick ÷ requests. Socket calls/req: ' +
            '`sock_send_length` + `sock_recv_length` calls ÷ requests (a keep-alive proxy: about 4: read the request, write it upstream, ' +
            'read the response, write it back). New upstream conns/req: TCP connects (CLOSE→SYN_SENT) by the proxy ÷ requests; ' +
            "~0 means the upstream pool is reused. Retransmits: `tcp_retransmit_skb` on the proxy's sockets; the probe attributes a " +
            'socket to the proxy only if it was connected (or its listener opened) while the probe ran, so retransmits on pooled ' +
            'upstream and already-open client connections are not seen: after warm-up this column covers only new connections. ' +
            "The BPF programs run in the proxy's context on its core, so they add a little to both CPU figures.",
        ]
      : []),
    '- Cells: median over rounds (min–max). Ratios are computed within each round (skein against the peer measured moments apart), then summarised.',
  ];
}

export function renderCoreReport(result: CoreResult): string {
  const { settings: s, meta: m } = result;
  const headers = [
    'target',
    `req/s @${s.connections} conns`,
    'CPU µs/req',
    'p50 @1 conn',
    'p99 @1 conn',
    'added p50 vs direct',
    'added p99 vs direct',
    'peak RSS MB',
    'upstream conns opened',
  ];
  const versions = Object.entries(m.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const busyBefore = Math.max(m.backgroundBusyPct.loadCpu, m.backgroundBusyPct.proxyCpu);
  const out = [
    `# Skein core benchmark: proxy overhead (${m.date})`,
    '',
    ...(busyBefore >= BACKGROUND_BUSY_WARN_PCT
      ? [
          `**Warning:** the machine was not idle before the start (up to ${formatNumber(busyBefore)}% of a CPU busy): other processes ` +
            'compete with the proxy and the load generator, so absolute numbers are low and noisy. Compare targets within this run only.',
          '',
        ]
      : []),
    `Machine: ${m.host}. Before starting: CPU ${s.loadCpu} ${formatNumber(m.backgroundBusyPct.loadCpu)}% busy, ` +
      `CPU ${s.proxyCpu} ${formatNumber(m.backgroundBusyPct.proxyCpu)}% busy.`,
    `Versions: ${versions}. ${s.rounds} round${s.rounds === 1 ? '' : 's'}, measuring took ${formatNumber(m.measureSeconds)} s. ` +
      `Command: \`${m.command}\``,
    '',
    renderTable(headers, tableRows(result)),
    '',
    ...(result.probes?.used === true ? [...probeTable(result), ''] : []),
    ratioLine(result, 'skein CPU/req ÷ nginx', 'nginx', (a, b) => cpuPerReq(a) / cpuPerReq(b)),
    ratioLine(result, 'skein req/s ÷ naive-undici', 'naive-undici', (a, b) => rps(a) / rps(b)),
    ...result.skipped.map((x) => `- Skipped ${x.target}: ${x.reason}`),
    '',
    ...checkLines(result),
    '',
    ...howMeasured(result),
    '',
  ];
  return out.join('\n');
}
