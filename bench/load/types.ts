// The load generator's contract: what a scenario asks for (LoadSpec) and what a run returns (LoadResult).
// The orchestrator (bench/cli.ts) builds specs per target; engines (the built-in generator, wrk, h2load)
// all return the same LoadResult so the report never knows which one ran.

export type LoadProtocol = 'http1' | 'http2' | 'grpc-unary' | 'grpc-server-stream' | 'websocket';

/** Open loop: requests leave on a fixed timetable (rate), latency counted from the intended send time.
 *  Closed loop: each connection (or stream slot) sends its next request when the previous answer arrives. */
export type LoadMode = 'open' | 'closed';

export type LoadEngine = 'builtin' | 'wrk' | 'h2load';

/** k6-style stage: move the rate (open) or the connection count (closed) linearly to `target` over `durationS`. */
export interface RampStage {
  readonly durationS: number;
  readonly target: number;
}

export interface LoadTls {
  /** PEM file paths; cert+key present means mTLS. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly servername?: string;
}

export interface LoadSpec {
  /** http://host:port/path, https://…; for websocket ws:// or wss://; for gRPC http://host:port (the
   *  method is the bench echo service's, see bench/load/README or the engine's docs). */
  readonly url: string;
  readonly protocol: LoadProtocol;
  readonly mode: LoadMode;
  readonly engine: LoadEngine;
  /** Open loop: requests per second (ignored when stages are given). */
  readonly ratePerS?: number;
  /** TCP connections (HTTP/1.1: one request in flight each; h2/gRPC: multiplexed). */
  readonly connections: number;
  /** h2/gRPC: closed loop, streams in flight per connection (default 1); open loop, the most in flight per
   *  connection before requests wait in the generator (default 1000, never above the server's limit). */
  readonly streamsPerConnection?: number;
  /** Measured duration (ignored when stages are given). */
  readonly durationS: number;
  /** Unmeasured warm-up at the same load before the measured window. */
  readonly warmupS?: number;
  readonly stages?: readonly RampStage[];
  /** Where the first stage ramps from (default: rate 0 for open loop, 1 connection for closed loop, as k6). */
  readonly rampStart?: number;
  /** Request body (POST) / gRPC message / WebSocket message size in bytes; 0 = GET with no body. */
  readonly payloadBytes?: number;
  /** gRPC server streaming: messages per call (sent to the server as the `x-stream-messages` header). */
  readonly streamMessages?: number;
  readonly tls?: LoadTls;
  /** HTTP/1.1: every request on a new connection (sent with `connection: close`); default keep-alive. */
  readonly newConnectionPerRequest?: boolean;
  /** Per-request timeout (default 5000); a request over it counts as an error of kind "timeout". */
  readonly timeoutMs?: number;
  /** CPU the generator runs on (taskset / worker affinity); undefined = anywhere. */
  readonly cpu?: number;
}

/** Latency percentiles in microseconds. */
export interface LatencyUs {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** How far the generator fell behind its own timetable (open loop only). */
export interface GeneratorLag {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** false when p99 lag ≥ 1 ms: the run's latency figures describe the generator, not the target. */
  readonly trustworthy: boolean;
}

export interface LoadResult {
  readonly engine: LoadEngine;
  readonly protocol: LoadProtocol;
  readonly mode: LoadMode;
  /** Measured window, seconds (excludes warm-up). */
  readonly durationS: number;
  /** Requests (gRPC calls, WebSocket round trips) completed in the window, successes and errors. */
  readonly requests: number;
  readonly ok: number;
  /** Error counts by kind: "connect", "timeout", "status_5xx", "status_4xx", "reset", "grpc_<code>", …
   *  (gRPC codes by lowercase name: "grpc_unavailable", "grpc_deadline_exceeded"; unknown ones by number). */
  readonly errors: Readonly<Record<string, number>>;
  readonly throughputPerS: number;
  /** Open loop: the rate asked for; closed loop: undefined. */
  readonly targetRatePerS?: number;
  readonly latencyUs: LatencyUs;
  /** [percentile (0–100), latency µs] points for a percentile curve, ascending; ~20–60 points. */
  readonly percentileCurve: readonly (readonly [number, number])[];
  /** Open loop only; undefined for closed loop and for engines that cannot report it. */
  readonly lag?: GeneratorLag;
  /** gRPC server streaming: response messages received in the window. */
  readonly messages?: number;
  /** Open loop, built-in engine: requests that waited in the generator for a free connection or stream
   *  (the target answered slower than rate ÷ connections); their wait is part of their latency. */
  readonly queued?: number;
  /** Built-in engine: CPU seconds (user + system) the generator process spent during the run. */
  readonly generatorCpuSeconds?: number;
  /** How the engine measured, when it differs from the built-in open loop (e.g. h2load's paced mode). */
  readonly notes?: readonly string[];
}

/** Whether an engine can run here (and, given a spec, run that spec); `reason` says what is missing. */
export interface EngineAvailability {
  readonly available: boolean;
  readonly reason?: string;
}

/** Every engine implements this. */
export type RunLoad = (spec: LoadSpec, signal?: AbortSignal) => Promise<LoadResult>;
