// One measured load run: wrk against a target, with the proxy's CPU time (/proc), both CPUs' busy time and the
// origin's connection counters read just before and just after, so every number refers to the same window.
import { type OriginCounters, originDelta, readOriginCounters } from './origin.ts';
import type { ProbeRun } from '../../probes/runner.ts';
import { type ProbeSample, startProbe, stopProbe } from './probes.ts';
import type { ProcessSupervisor } from './processes.ts';
import { cpuBusyBetween, cpuTicksOf, processTree, readCpuTimes } from './procfs.ts';
import { runWrk, type WrkOptions, type WrkSummary } from './wrk.ts';

export interface MeasureSetup {
  readonly supervisor: ProcessSupervisor;
  /** Root of the proxy's process tree; undefined when wrk talks to the origin directly. */
  readonly proxyPid: number | undefined;
  readonly originStatusPort: number;
  /** CPU running wrk and the origin. */
  readonly loadCpu: number;
  /** CPU the proxy is pinned to. */
  readonly proxyCpu: number;
  readonly clockTicksPerSecond: number;
  /** Present when eBPF probes may be used; `fail` turns them off for the rest of the benchmark. */
  readonly probes?: ProbeControl;
}

export interface ProbeControl {
  readonly enabled: boolean;
  fail(message: string): void;
}

export interface MeasuredRun {
  readonly wrk: WrkSummary;
  /** Processes counted as "the proxy" (root and descendants at the end of the run). */
  readonly proxyPids: readonly number[];
  /** utime+stime of the proxy tree during the run, in clock ticks; NaN without a proxy. */
  readonly proxyCpuTicks: number;
  /** Proxy CPU time per completed request, µs; NaN without a proxy. */
  readonly proxyCpuUsPerRequest: number;
  /** Connections the origin accepted during the run: the proxy's new upstream connections (wrk's own for direct). */
  readonly upstreamConnsOpened: number;
  /** Requests the origin served during the run; equals wrk's count when the proxy forwards each request once. */
  readonly originRequests: number;
  /** Whole-CPU utilisation over the run (everything on that CPU, not only our processes), %. */
  readonly loadCpuBusyPct: number;
  readonly proxyCpuBusyPct: number;
  readonly loadCpuStealPct: number;
  readonly proxyCpuStealPct: number;
  /** What the eBPF probe saw of the proxy during the run, when one was attached. */
  readonly probe?: ProbeSample;
  /** Why a requested probe produced no figures. */
  readonly probeError?: string;
}

/**
 * With `probe`, an eBPF probe is attached to the proxy's process tree before the window opens (its readiness
 * awaited, so bpftrace's ~1 s startup is outside) and stopped after the window closes.
 */
export async function measureWrkRun(
  setup: MeasureSetup,
  wrk: WrkOptions,
  opts: { readonly probe?: boolean } = {},
): Promise<MeasuredRun> {
  let probeRun: ProbeRun | undefined;
  let probePids: number[] = [];
  let probeError: string | undefined;
  const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).replaceAll('\n', ' ');
  if (opts.probe === true && setup.proxyPid !== undefined && setup.probes?.enabled === true) {
    probePids = processTree(setup.proxyPid);
    try {
      probeRun = await startProbe(probePids, setup.loadCpu);
    } catch (err) {
      probeError = `probe did not start: ${message(err)}`;
      setup.probes.fail(probeError);
    }
  }
  try {
    const run = await measureWindow(setup, wrk);
    let probe: ProbeSample | undefined;
    if (probeRun !== undefined) {
      const started = probeRun;
      probeRun = undefined;
      try {
        probe = await stopProbe(started, probePids);
      } catch (err) {
        probeError = `probe failed: ${message(err)}`;
        setup.probes?.fail(probeError);
      }
    }
    return { ...run, probe, probeError };
  } finally {
    await probeRun?.kill();
  }
}

async function measureWindow(setup: MeasureSetup, wrk: WrkOptions): Promise<MeasuredRun> {
  const treeTicks = () => (setup.proxyPid === undefined ? 0 : cpuTicksOf(processTree(setup.proxyPid)));
  // The HTTP read of the origin's counters comes first so its own cost falls outside the CPU window.
  const originBefore: OriginCounters = await readOriginCounters(setup.originStatusPort);
  const ticksBefore = treeTicks();
  const loadBefore = readCpuTimes(setup.loadCpu);
  const proxyBefore = readCpuTimes(setup.proxyCpu);

  const summary = await runWrk(setup.supervisor, { ...wrk, cpu: setup.loadCpu });

  const ticksAfter = treeTicks();
  const loadBusy = cpuBusyBetween(loadBefore, readCpuTimes(setup.loadCpu));
  const proxyBusy = cpuBusyBetween(proxyBefore, readCpuTimes(setup.proxyCpu));
  const proxyPids = setup.proxyPid === undefined ? [] : processTree(setup.proxyPid);
  const origin = originDelta(originBefore, await readOriginCounters(setup.originStatusPort));

  const hasProxy = setup.proxyPid !== undefined;
  const proxyCpuTicks = hasProxy ? ticksAfter - ticksBefore : Number.NaN;
  const cpuUs = (proxyCpuTicks * 1e6) / setup.clockTicksPerSecond;
  return {
    wrk: summary,
    proxyPids,
    proxyCpuTicks,
    proxyCpuUsPerRequest: hasProxy && summary.requests > 0 ? cpuUs / summary.requests : Number.NaN,
    upstreamConnsOpened: origin.accepts,
    originRequests: origin.requests,
    loadCpuBusyPct: loadBusy.busyPct,
    proxyCpuBusyPct: proxyBusy.busyPct,
    loadCpuStealPct: loadBusy.stealPct,
    proxyCpuStealPct: proxyBusy.stealPct,
  };
}
