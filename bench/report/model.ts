// What `skein bench` writes to report.json and what report.md / report.html and `skein bench compare` read.
// The orchestrator (bench/cli.ts) fills it; renderers and the comparison are pure functions of it.
import type { GeneratorLag, LatencyUs, LoadEngine, LoadMode, LoadProtocol } from '../load/types.ts';

export const REPORT_SCHEMA = 'skein-bench/1';

/** Which kind of deployment a target is: local peers are "baseline"; remote URLs say their mesh. */
export type MeshType = 'baseline' | 'skein' | 'istio' | 'linkerd' | 'cilium' | 'consul';

export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** How many rounds produced a value. */
  readonly n: number;
}

export interface ScenarioSpec {
  /** Short id used in tables and comparisons, e.g. "http1-max", "http1-1000rps", "grpc-unary-500rps". */
  readonly id: string;
  readonly protocol: LoadProtocol;
  readonly mode: LoadMode;
  readonly engine: LoadEngine;
  readonly ratePerS?: number;
  readonly connections: number;
  readonly durationS: number;
  readonly payloadBytes: number;
  /** http1-newconn: every request on a new connection (a full handshake per request against a TLS target). */
  readonly newConnectionPerRequest?: boolean;
}

/** One target in one round of one scenario. */
export interface RoundResult {
  readonly round: number;
  readonly throughputPerS: number;
  readonly latencyUs: LatencyUs;
  readonly percentileCurve: readonly (readonly [number, number])[];
  readonly requests: number;
  readonly errors: Readonly<Record<string, number>>;
  /** Proxy CPU seconds per 1,000 requests (/proc utime+stime); absent for direct and remote targets. */
  readonly cpuSecondsPer1k?: number;
  /** VmHWM of the proxy's processes after the round, MB. */
  readonly peakRssMb?: number;
  /** Targets of several processes (skein-pair, skein-mtls*: two proxies): each one's share of cpuSecondsPer1k,
   *  by the name processLabel() gives it, the ones that used CPU in the window. */
  readonly cpuSecondsPer1kByProcess?: Readonly<Record<string, number>>;
  /** TLS handshakes the target completed per second, counted by the target (skein-mtls*: the inbound proxy's
   *  mTLS handshakes; nginx-tls: accepted connections), over the whole call (an inner warm-up included). */
  readonly handshakesPerS?: number;
  readonly lag?: GeneratorLag;
  /** eBPF figures when the probes ran: per request. */
  readonly probe?: {
    readonly cpuUsPerRequest: number;
    readonly socketCallsPerRequest: number;
    readonly newUpstreamConnsPerRequest: number;
    readonly retransmits: number;
  };
}

export interface ScenarioSummary {
  readonly throughputPerS: Spread;
  readonly p50Us: Spread;
  readonly p90Us: Spread;
  readonly p99Us: Spread;
  readonly p999Us: Spread;
  readonly maxUs: Spread;
  /** Latency added over direct at the same rate, paired within rounds; absent for direct or without direct. */
  readonly addedP50Us?: Spread;
  readonly addedP99Us?: Spread;
  readonly cpuSecondsPer1k?: Spread;
  readonly peakRssMb?: Spread;
  readonly handshakesPerS?: Spread;
  /** Errors summed over rounds, by kind. */
  readonly errors: Readonly<Record<string, number>>;
  readonly errorRate: number;
}

export interface TargetScenarioResult {
  readonly scenario: string;
  readonly rounds: readonly RoundResult[];
  readonly summary: ScenarioSummary;
}

export interface TargetReport {
  /** e.g. "direct", "skein", "skein-mtls", "nginx", "haproxy", "http-proxy", "istio@http://…". */
  readonly name: string;
  readonly mesh: MeshType;
  readonly kind: 'local' | 'remote';
  /** One line: what exactly ran (command, versions, URL). */
  readonly description: string;
  readonly available: boolean;
  /** Why an unavailable target was not measured (not built yet, package missing, did not start). */
  readonly unavailableReason?: string;
  readonly results: readonly TargetScenarioResult[];
}

/** A figure a project published about its own overhead: shown beside ours, never mixed with it. */
export interface PublishedFigure {
  readonly mesh: MeshType;
  readonly metric: string;
  readonly value: string;
  readonly conditions: string;
  readonly source: string;
  readonly url: string;
}

export interface BenchReport {
  readonly schema: typeof REPORT_SCHEMA;
  readonly createdAt: string;
  readonly command: string;
  readonly machine: {
    readonly host: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly kernel: string;
    readonly memoryGiB: number;
  };
  readonly versions: Readonly<Record<string, string>>;
  readonly settings: {
    readonly rounds: number;
    readonly warmupS: number;
    readonly proxyCpu?: number;
    readonly loadCpu?: number;
    readonly [key: string]: unknown;
  };
  readonly scenarios: readonly ScenarioSpec[];
  readonly targets: readonly TargetReport[];
  /** Checks on the run itself: generator lag, background load, probe vs /proc agreement. */
  readonly warnings: readonly string[];
  readonly published: readonly PublishedFigure[];
}
