// One measured load run against one target: the proxy's CPU time (/proc utime+stime of its process tree) and both
// CPUs' busy time over the measured window, the eBPF probe attached around it when asked, and the proxy's peak RSS
// after it, so every figure of a RoundResult refers to the same window. When the generator warms up inside the
// call (spec.warmupS), the window is not the call: the counters are then sampled every 100 ms and interpolated at
// the window's edges, the last durationS seconds before the result arrived. A TLS target's handshake counter is read
// before and after the call: handshakes per second over the seconds the call put load on it (warm-up included).
import type { ProbeRun } from '../../probes/runner.ts';
import type { LoadResult, LoadSpec, RunLoad } from '../load/types.ts';
import { type HandshakeCounter, readHandshakes } from '../lib/handshakes.ts';
import { type ProbeSample, startProbe, stopProbe } from '../lib/probes.ts';
import {
  type CpuTimes,
  cpuBusyBetween,
  cpuTicksEach,
  peakRssKbOf,
  processLabel,
  processTree,
  readCpuTimes,
} from '../lib/procfs.ts';
import type { RoundResult } from '../report/model.ts';

/** Whether eBPF probes may be used; `fail` turns them off for the rest of the run. */
export interface ProbeControl {
  readonly enabled: boolean;
  fail(message: string): void;
}

export interface MeasureContext {
  readonly runLoad: RunLoad;
  /** Present when the proxies are pinned: the CPUs whose busy time is sampled. */
  readonly cpus?: { readonly load: number; readonly proxy: number };
  readonly clockTicksPerSecond: number;
  readonly probes?: ProbeControl;
  readonly signal?: AbortSignal;
}

export interface MeasuredRound {
  readonly result: RoundResult;
  /** The load generator's own result, as returned. */
  readonly load: LoadResult;
  readonly probeSample?: ProbeSample;
  readonly probeError?: string;
  /** Why the target's handshake counter could not be read (then the round has no handshakesPerS). */
  readonly handshakeError?: string;
  /** Proxy CPU µs per request from /proc, for the probe agreement check; NaN without a proxy. */
  readonly procCpuUsPerRequest: number;
  readonly loadCpuBusyPct?: number;
  readonly proxyCpuBusyPct?: number;
  readonly proxyCpuStealPct?: number;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).replaceAll('\n', ' ');

/** Turns a load result and the /proc, probe figures of its window into the report's RoundResult. */
export function roundResult(
  round: number,
  load: LoadResult,
  proxy: {
    readonly cpuSeconds?: number;
    readonly peakRssKb?: number;
    readonly probe?: ProbeSample;
    readonly handshakesPerS?: number;
    /** CPU seconds of each process of a multi-process target, by name. */
    readonly cpuSecondsByProcess?: Readonly<Record<string, number>>;
  },
): RoundResult {
  const n = load.requests;
  const p = proxy.probe;
  return {
    round,
    throughputPerS: load.throughputPerS,
    latencyUs: load.latencyUs,
    percentileCurve: load.percentileCurve,
    requests: n,
    errors: load.errors,
    cpuSecondsPer1k: proxy.cpuSeconds !== undefined && n > 0 ? (proxy.cpuSeconds / n) * 1000 : undefined,
    peakRssMb: proxy.peakRssKb !== undefined && proxy.peakRssKb > 0 ? proxy.peakRssKb / 1024 : undefined,
    ...(proxy.cpuSecondsByProcess !== undefined &&
      n > 0 && {
        cpuSecondsPer1kByProcess: Object.fromEntries(
          Object.entries(proxy.cpuSecondsByProcess).map(([name, s]) => [name, (s / n) * 1000]),
        ),
      }),
    ...(proxy.handshakesPerS !== undefined && { handshakesPerS: proxy.handshakesPerS }),
    lag: load.lag,
    probe:
      p !== undefined && n > 0
        ? {
            cpuUsPerRequest: p.onCpuNs / 1000 / n,
            socketCallsPerRequest: (p.sendCalls + p.recvCalls) / n,
            newUpstreamConnsPerRequest: p.connects / n,
            retransmits: p.retransmits,
          }
        : undefined,
  };
}

/** Counters read at one moment: the proxy tree's CPU ticks (in all, and per process) and both CPUs' jiffies. */
interface Sample {
  readonly atMs: number;
  readonly ticks: number;
  /** Per process of the tree, in the order of its pids (absent in samples made by hand). */
  readonly each?: readonly number[];
  readonly load?: CpuTimes;
  readonly proxy?: CpuTimes;
}

const SAMPLE_EVERY_MS = 100;

function lerp(a: number, b: number, f: number): number {
  return a + (b - a) * f;
}

/** The counters at `atMs`, linearly between the two samples around it (clamped to the first and last). */
export function sampleAt(samples: readonly Sample[], atMs: number): Sample {
  const first = samples[0];
  if (atMs <= first.atMs) return first;
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i];
    if (atMs > b.atMs) continue;
    const a = samples[i - 1];
    const f = b.atMs === a.atMs ? 1 : (atMs - a.atMs) / (b.atMs - a.atMs);
    const times = (x?: CpuTimes, y?: CpuTimes): CpuTimes | undefined =>
      x && y && { total: lerp(x.total, y.total, f), idle: lerp(x.idle, y.idle, f), steal: lerp(x.steal, y.steal, f) };
    return {
      atMs,
      ticks: lerp(a.ticks, b.ticks, f),
      each: a.each?.map((t, j) => lerp(t, b.each?.[j] ?? t, f)),
      load: times(a.load, b.load),
      proxy: times(a.proxy, b.proxy),
    };
  }
  return samples[samples.length - 1];
}

/** Reads the counters now, and every 100 ms until stopped when the window is inside a longer call. */
class CounterSampler {
  readonly samples: Sample[] = [];
  readonly #read: () => Sample;
  #timer: NodeJS.Timeout | undefined;

  constructor(ctx: MeasureContext, pids: readonly number[], periodic: boolean) {
    this.#read = () => {
      const each = cpuTicksEach(pids);
      return {
        atMs: performance.now(),
        ticks: each.reduce((a, b) => a + b, 0),
        each,
        load: ctx.cpus === undefined ? undefined : readCpuTimes(ctx.cpus.load),
        proxy: ctx.cpus === undefined ? undefined : readCpuTimes(ctx.cpus.proxy),
      };
    };
    this.samples.push(this.#read());
    if (periodic) this.#timer = setInterval(() => this.samples.push(this.#read()), SAMPLE_EVERY_MS);
  }

  /** The counters at the start and the end of the window that ended now and lasted `windowS`. */
  finish(windowS: number): [Sample, Sample] {
    clearInterval(this.#timer);
    const end = this.#read();
    this.samples.push(end);
    if (this.#timer === undefined) return [this.samples[0], end];
    return [sampleAt(this.samples, end.atMs - windowS * 1000), end];
  }
}

/**
 * Runs `spec` once and measures the proxy rooted at `proxyPid` (undefined: direct or remote, nothing to measure).
 * With `probe`, the eBPF probe is attached (its ~1 s start-up awaited) before the call; use it only on calls
 * without an inner warm-up, or its figures include the warm-up.
 */
export async function measureRound(
  ctx: MeasureContext,
  proxyPid: number | undefined,
  spec: LoadSpec,
  round: number,
  opts: { readonly probe?: boolean; readonly handshakes?: HandshakeCounter } = {},
): Promise<MeasuredRound> {
  let handshakeError: string | undefined;
  const handshakes = async (): Promise<number | undefined> => {
    if (opts.handshakes === undefined || handshakeError !== undefined) return undefined;
    try {
      return await readHandshakes(opts.handshakes);
    } catch (err) {
      handshakeError = `handshake counter: ${message(err)}`;
      return undefined;
    }
  };
  let probeRun: ProbeRun | undefined;
  let probePids: number[] = [];
  let probeError: string | undefined;
  if (opts.probe === true && proxyPid !== undefined && ctx.probes?.enabled === true && ctx.cpus !== undefined) {
    probePids = processTree(proxyPid);
    try {
      probeRun = await startProbe(probePids, ctx.cpus.load);
    } catch (err) {
      probeError = `probe did not start: ${message(err)}`;
      ctx.probes.fail(probeError);
    }
  }
  try {
    // The tree is read once: a proxy does not fork during a run, and re-listing /proc every sample would cost the
    // load CPU more than the sample itself.
    const pids = proxyPid === undefined ? [] : processTree(proxyPid);
    const handshakesBefore = await handshakes();
    const sampler = new CounterSampler(ctx, pids, (spec.warmupS ?? 0) > 0);
    const load = await ctx.runLoad(spec, ctx.signal);
    const [before, after] = sampler.finish(load.durationS);
    const handshakesAfter = await handshakes();
    const loadedS = load.durationS + (spec.warmupS ?? 0);
    const handshakesPerS =
      handshakesBefore !== undefined && handshakesAfter !== undefined && loadedS > 0
        ? (handshakesAfter - handshakesBefore) / loadedS
        : undefined;
    const busy = (x?: CpuTimes, y?: CpuTimes) => (x && y ? cpuBusyBetween(x, y) : undefined);
    const loadBusy = busy(before.load, after.load);
    const proxyBusy = busy(before.proxy, after.proxy);

    let probeSample: ProbeSample | undefined;
    if (probeRun !== undefined) {
      const started = probeRun;
      probeRun = undefined;
      try {
        probeSample = await stopProbe(started, probePids);
      } catch (err) {
        probeError = `probe failed: ${message(err)}`;
        ctx.probes?.fail(probeError);
      }
    }
    const cpuSeconds = proxyPid === undefined ? undefined : (after.ticks - before.ticks) / ctx.clockTicksPerSecond;
    // Several processes that work (a shell wrapper's few ticks aside): each one's share, by name.
    const each = pids.map((pid, i) => [
      processLabel(pid),
      ((after.each?.[i] ?? 0) - (before.each?.[i] ?? 0)) / ctx.clockTicksPerSecond,
    ]);
    const working = each.filter(([, s]) => (s as number) > 0);
    const cpuSecondsByProcess =
      working.length > 1 ? (Object.fromEntries(working) as Record<string, number>) : undefined;
    const peakRssKb = proxyPid === undefined ? undefined : peakRssKbOf(processTree(proxyPid));
    return {
      result: roundResult(round, load, {
        cpuSeconds,
        peakRssKb,
        probe: probeSample,
        handshakesPerS,
        cpuSecondsByProcess,
      }),
      load,
      probeSample,
      probeError,
      handshakeError,
      procCpuUsPerRequest:
        cpuSeconds !== undefined && load.requests > 0 ? (cpuSeconds * 1e6) / load.requests : Number.NaN,
      loadCpuBusyPct: loadBusy?.busyPct,
      proxyCpuBusyPct: proxyBusy?.busyPct,
      proxyCpuStealPct: proxyBusy?.stealPct,
    };
  } finally {
    await probeRun?.kill();
  }
}
