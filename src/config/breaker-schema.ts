// A cluster's `circuitBreakers` block: Envoy's per-cluster thresholds (its defaults apply when the block is
// absent), and the optional per-endpoint breaker (closed → open → half-open). Imported by schema.ts.
import { z } from 'zod';

const Count = z.number().int().min(1).max(1_000_000);
const Millis = z.number().int().nonnegative();

/** Per-endpoint breaker: present = on. Opens on consecutive failures or a failure rate over a rolling window. */
export const EndpointBreaker = z
  .strictObject({
    /** Failures in a row (5xx, connect failure, reset, timeout) that open the breaker; 0 = not by count. */
    consecutiveFailures: z.number().int().min(0).max(1_000_000).default(5),
    /** Failure share of the window's requests (percent) that opens the breaker; 0 = not by rate. */
    failureRatePercent: z.number().min(0).max(100).default(50),
    /** The rate only counts once the window holds this many requests. */
    minimumRequests: Count.default(20),
    /** Length of the rolling window the rate is computed over. */
    windowMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** How long an open breaker refuses requests before it lets probes through (half-open). */
    openMs: z.number().int().min(1).max(3_600_000).default(30_000),
    /** Probe requests in flight at once while half-open; a success closes the breaker, a failure re-opens it. */
    halfOpenRequests: Count.default(1),
  })
  .refine((b) => b.consecutiveFailures > 0 || b.failureRatePercent > 0, {
    message: 'an endpoint breaker needs consecutiveFailures or failureRatePercent above 0',
  });

const THRESHOLD_DEFAULTS = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };

/** Envoy's cluster circuit breakers (defaults as Envoy's). Over a threshold a request fails at once: 503 UO. */
export const CircuitBreakers = z.strictObject({
  /** Connections (HTTP/2: sessions) open to all of the cluster's endpoints together. */
  maxConnections: Count.default(THRESHOLD_DEFAULTS.maxConnections),
  /** Requests waiting for a connection while the cluster is at maxConnections. */
  maxPendingRequests: z.number().int().min(0).max(1_000_000).default(THRESHOLD_DEFAULTS.maxPendingRequests),
  /** Requests in flight to the cluster (HTTP/2 streams included). */
  maxRequests: Count.default(THRESHOLD_DEFAULTS.maxRequests),
  /** Retries in flight to the cluster at once (the retry stage asks before each retry). */
  maxRetries: z.number().int().min(0).max(1_000_000).default(THRESHOLD_DEFAULTS.maxRetries),
  endpoint: EndpointBreaker.optional(),
});

export const CIRCUIT_BREAKER_DEFAULTS = THRESHOLD_DEFAULTS;

export type CircuitBreakersConfig = z.infer<typeof CircuitBreakers>;
export type EndpointBreakerConfig = z.infer<typeof EndpointBreaker>;
