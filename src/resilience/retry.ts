// Retry decisions, compiled from a retry policy (config/retry-schema.ts): which attempt outcomes may be retried
// (an HTTP status, the gRPC status of a trailers-only answer, why an attempt failed without an answer), how long
// to wait before the next attempt (Envoy's full-jitter exponential backoff), and a cluster's retry budget
// (Linkerd's). Pure: the caller passes the time and the random numbers; proxy/stages/retry.ts applies them.
import type { RetryBudgetConfig, RetryOn, RetryPolicyConfig } from '../config/retry-schema.ts';

/** Why an attempt failed without an answer, in the terms a policy reads (the stage maps the upstream error). */
export type AttemptFailure = 'connect-failure' | 'refused-stream' | 'reset' | 'per-try-timeout';

// One bit per HTTP condition.
const ON_5XX = 1;
const ON_GATEWAY_ERROR = 2;
const ON_CONNECT_FAILURE = 4;
const ON_RESET = 8;
const ON_REFUSED_STREAM = 16;
const ON_RETRIABLE_4XX = 32;
const ON_STATUS_CODES = 64;

const HTTP_BITS: Partial<Record<RetryOn, number>> = {
  '5xx': ON_5XX,
  'gateway-error': ON_GATEWAY_ERROR,
  'connect-failure': ON_CONNECT_FAILURE,
  reset: ON_RESET,
  'refused-stream': ON_REFUSED_STREAM,
  'retriable-4xx': ON_RETRIABLE_4XX,
  'retriable-status-codes': ON_STATUS_CODES,
};

/** gRPC conditions by the status they name (grpc/doc/statuscodes.md). */
const GRPC_STATUSES: Partial<Record<RetryOn, number>> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
};

/**
 * Which HTTP conditions retry a failure without an answer, as Envoy reads them: 5xx, gateway-error and reset
 * cover every such failure (a per-try timeout included); connect-failure and refused-stream only their own.
 */
const FAILURE_BITS: Readonly<Record<AttemptFailure, number>> = {
  'connect-failure': ON_5XX | ON_GATEWAY_ERROR | ON_RESET | ON_CONNECT_FAILURE,
  'refused-stream': ON_5XX | ON_GATEWAY_ERROR | ON_RESET | ON_REFUSED_STREAM,
  reset: ON_5XX | ON_GATEWAY_ERROR | ON_RESET,
  'per-try-timeout': ON_5XX | ON_GATEWAY_ERROR | ON_RESET,
};

export interface CompiledRetryPolicy {
  readonly maxRetries: number;
  /** 0: none. */
  readonly perTryTimeoutMs: number;
  readonly bufferLimitBytes: number;
  readonly baseIntervalMs: number;
  readonly maxIntervalMs: number;
  /** HTTP conditions, one bit each. */
  readonly httpOn: number;
  /** gRPC statuses retried, bit `1 << status`; 0: none (no header is read for it). */
  readonly grpcOn: number;
  /** retriable-status-codes (empty unless that condition is on). */
  readonly statusCodes: readonly number[];
}

/** The policy as the stage reads it; null when it never retries (`maxRetries: 0`). */
export function compileRetryPolicy(cfg: RetryPolicyConfig): CompiledRetryPolicy | null {
  if (cfg.maxRetries === 0) return null;
  let httpOn = 0;
  let grpcOn = 0;
  for (const on of cfg.retryOn) {
    httpOn |= HTTP_BITS[on] ?? 0;
    const grpc = GRPC_STATUSES[on];
    if (grpc !== undefined) grpcOn |= 1 << grpc;
  }
  return Object.freeze({
    maxRetries: cfg.maxRetries,
    perTryTimeoutMs: cfg.perTryTimeoutMs,
    bufferLimitBytes: cfg.bufferLimitBytes,
    baseIntervalMs: cfg.backoff.baseIntervalMs,
    maxIntervalMs: cfg.backoff.maxIntervalMs,
    httpOn,
    grpcOn,
    statusCodes: (httpOn & ON_STATUS_CODES) !== 0 ? [...new Set(cfg.retriableStatusCodes)] : [],
  });
}

/** An answer with this status may be retried. */
export function retriableStatus(p: CompiledRetryPolicy, status: number): boolean {
  const on = p.httpOn;
  if (status >= 500 && (on & ON_5XX) !== 0) return true;
  if ((status === 502 || status === 503 || status === 504) && (on & ON_GATEWAY_ERROR) !== 0) return true;
  if (status === 409 && (on & ON_RETRIABLE_4XX) !== 0) return true;
  return p.statusCodes.length !== 0 && p.statusCodes.includes(status);
}

/** A gRPC answer with this status (read from a trailers-only answer's head) may be retried. */
export function retriableGrpcStatus(p: CompiledRetryPolicy, grpcStatus: number): boolean {
  return grpcStatus > 0 && grpcStatus < 31 && (p.grpcOn & (1 << grpcStatus)) !== 0;
}

/** An attempt that failed this way without an answer may be retried. */
export function retriableFailure(p: CompiledRetryPolicy, failure: AttemptFailure): boolean {
  return (p.httpOn & FAILURE_BITS[failure]) !== 0;
}

/**
 * The wait before retry number `n` (1 for the first retry), in ms: uniform in [0, min(max, base × (2^n − 1))),
 * Envoy's fully jittered exponential backoff (with the 25 ms default: under 25, 75, 175, then 250 ms). `random`
 * is uniform in [0, 1).
 */
export function backoffMs(p: CompiledRetryPolicy, n: number, random: number): number {
  const ceiling = Math.min(p.maxIntervalMs, p.baseIntervalMs * (2 ** Math.min(n, 30) - 1));
  return Math.floor(random * ceiling);
}

/** The budget's window is kept as this many buckets of ttlMs / BUCKETS each. */
const BUCKETS = 10;

/**
 * Linkerd's retry budget, one per cluster: over the last `ttlMs`, retries may add `retryRatio` of the requests
 * plus `minRetriesPerSecond` × ttl, so retries can't multiply an outage. Every request deposits (once, however
 * many attempts it makes); each retry withdraws, or is refused when the window has no room. Counts kept in
 * buckets: a request costs an increment and, once per bucket length, a rotation.
 */
export class RetryBudget {
  readonly retryRatio: number;
  readonly minRetriesPerSecond: number;
  readonly ttlMs: number;
  /** Retries the window allows whatever the traffic (the floor). */
  private readonly reserve: number;
  private readonly bucketMs: number;
  private readonly requests = new Float64Array(BUCKETS);
  private readonly retries = new Float64Array(BUCKETS);
  private requestsInWindow = 0;
  private retriesInWindow = 0;
  /** The bucket (time / bucketMs) last written, and when the next one starts. */
  private bucket = -BUCKETS;
  private nextBucketAtMs = -Infinity;
  /** Retries refused since the cluster was built (for /clusters). */
  refused = 0;

  constructor(cfg: RetryBudgetConfig) {
    this.retryRatio = cfg.retryRatio;
    this.minRetriesPerSecond = cfg.minRetriesPerSecond;
    this.ttlMs = cfg.ttlMs;
    this.reserve = (cfg.minRetriesPerSecond * cfg.ttlMs) / 1000;
    this.bucketMs = cfg.ttlMs / BUCKETS;
  }

  /** A request to the cluster starts (its first attempt). */
  deposit(nowMs: number): void {
    if (nowMs >= this.nextBucketAtMs) this.rotate(nowMs);
    this.requests[this.bucket % BUCKETS]++;
    this.requestsInWindow++;
  }

  /** A retry is about to be made: true (counted) when the window has room for it, false (counted as refused). */
  tryWithdraw(nowMs: number): boolean {
    if (nowMs >= this.nextBucketAtMs) this.rotate(nowMs);
    if (this.retriesInWindow + 1 > this.retryRatio * this.requestsInWindow + this.reserve) {
      this.refused++;
      return false;
    }
    this.retries[this.bucket % BUCKETS]++;
    this.retriesInWindow++;
    return true;
  }

  /** What /clusters shows: the window's counts and the retries it would allow now. */
  describe(nowMs: number): object {
    if (nowMs >= this.nextBucketAtMs) this.rotate(nowMs);
    return {
      retryRatio: this.retryRatio,
      minRetriesPerSecond: this.minRetriesPerSecond,
      ttlMs: this.ttlMs,
      requests: this.requestsInWindow,
      retries: this.retriesInWindow,
      available: Math.max(0, Math.floor(this.retryRatio * this.requestsInWindow + this.reserve - this.retriesInWindow)),
      refused: this.refused,
    };
  }

  /** Empties the buckets that fell out of the window since the last one written. */
  private rotate(nowMs: number): void {
    const bucket = Math.floor(nowMs / this.bucketMs);
    const passed = Math.min(bucket - this.bucket, BUCKETS);
    for (let i = 1; i <= passed; i++) {
      const b = (((this.bucket + i) % BUCKETS) + BUCKETS) % BUCKETS;
      this.requestsInWindow -= this.requests[b];
      this.retriesInWindow -= this.retries[b];
      this.requests[b] = 0;
      this.retries[b] = 0;
    }
    this.bucket = bucket;
    this.nextBucketAtMs = (bucket + 1) * this.bucketMs;
  }
}
