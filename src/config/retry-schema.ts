// A retry policy (a route's `retries`, a listener's `stages.retry` default for its routes) and a cluster's
// `retryBudget` (Linkerd's: retries at most a share of requests plus a floor per second). Defaults follow Istio:
// 2 retries on connect failures, refused streams, resets and 503 (gRPC UNAVAILABLE). Imported by schema.ts and
// stages.ts; src/resilience/retry.ts compiles a policy for the retry stage.
import { z } from 'zod';

/** What may be retried: Envoy's `retry_on` names (HTTP, then gRPC statuses read from a trailers-only answer). */
export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'connect-failure',
  'reset',
  'refused-stream',
  'retriable-4xx',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];

/** Istio's default conditions (plus reset), and its default status list. */
export const DEFAULT_RETRY_ON: readonly RetryOn[] = [
  'connect-failure',
  'refused-stream',
  'reset',
  'retriable-status-codes',
  'unavailable',
];
export const DEFAULT_RETRIABLE_STATUS_CODES: readonly number[] = [503];
/** Request bodies up to this are kept while they go upstream, so a retry can send them again. */
export const DEFAULT_BUFFER_LIMIT_BYTES = 64 * 1024;
/** Envoy's backoff: full jitter over base × (2^n − 1), at most max. */
export const DEFAULT_BACKOFF = { baseIntervalMs: 25, maxIntervalMs: 250 } as const;

export const RetryBackoff = z
  .strictObject({
    baseIntervalMs: z.number().int().min(1).max(60_000).default(DEFAULT_BACKOFF.baseIntervalMs),
    maxIntervalMs: z.number().int().min(1).max(300_000).default(DEFAULT_BACKOFF.maxIntervalMs),
  })
  .refine((b) => b.maxIntervalMs >= b.baseIntervalMs, {
    message: 'maxIntervalMs must be at least baseIntervalMs',
    path: ['maxIntervalMs'],
  });

export const RetryPolicy = z.strictObject({
  /** Retries after the first attempt (Istio's `attempts`, Envoy's `num_retries`); 0 turns retries off. */
  maxRetries: z.number().int().min(0).max(10).default(2),
  /** Each attempt's own deadline within the request's timeout; it fails that attempt with UT, which the
   *  conditions 5xx, gateway-error and reset retry. 0: none (each attempt gets what is left of the request's). */
  perTryTimeoutMs: z.number().int().min(0).default(0),
  retryOn: z.array(z.enum(RETRY_ON)).default([...DEFAULT_RETRY_ON]),
  /** retriable-status-codes: the statuses retried. */
  retriableStatusCodes: z.array(z.number().int().min(100).max(599)).default([...DEFAULT_RETRIABLE_STATUS_CODES]),
  /** A request body larger than this is not kept, and its request not retried once the body went out. */
  bufferLimitBytes: z
    .number()
    .int()
    .min(0)
    .max(16 * 1024 * 1024)
    .default(DEFAULT_BUFFER_LIMIT_BYTES),
  backoff: RetryBackoff.default({ ...DEFAULT_BACKOFF }),
});

/** Linkerd's budget, kept per cluster: over `ttlMs`, retries may be `retryRatio` of requests plus the floor. */
export const RetryBudget = z.strictObject({
  retryRatio: z.number().min(0).max(1000).default(0.2),
  minRetriesPerSecond: z.number().int().min(0).max(1_000_000).default(10),
  ttlMs: z.number().int().min(1000).max(60_000).default(10_000),
});

export const RETRY_BUDGET_DEFAULTS = { retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 };

export type RetryPolicyConfig = z.infer<typeof RetryPolicy>;
export type RetryBudgetConfig = z.infer<typeof RetryBudget>;
