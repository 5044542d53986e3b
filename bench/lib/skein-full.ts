// The configs of the `skein-full` and `skein-full-global` bench targets: the plain skein target's route and cluster
// with every resilience stage configured but set so that none fires under the bench's load (the origin always
// answers 200, the rate limit is far above any load the bench sends), so the figures show what carrying them costs.
import { stringify } from 'yaml';
import { DEFAULT_RETRY_ON } from '../../src/config/retry-schema.ts';
import type { ConfigInput } from '../../src/config/schema.ts';

/** The rate limit's sustained rate and burst: the schema's ceiling, well over anything one proxy core serves. */
export const SKEIN_FULL_RATE_PER_S = 1_000_000;
/** Between two active health checks of the origin (GET / answers 200 on both bench origins). */
export const SKEIN_FULL_HEALTH_INTERVAL_MS = 1000;

export interface SkeinFullOptions {
  readonly port: number;
  readonly originPort: number;
  /** The admin listener (/clusters, /metrics): where a run or a test sees that nothing fired. */
  readonly adminPort: number;
  /** skein-full-global: the redis-server that keeps the shared limit (redis://127.0.0.1:PORT). */
  readonly redisUrl?: string;
}

export function skeinFullConfigObject(opts: SkeinFullOptions): ConfigInput {
  return {
    service: 'bench-client',
    admin: { address: `127.0.0.1:${opts.adminPort}` },
    listeners: [
      {
        name: 'bench',
        address: `127.0.0.1:${opts.port}`,
        direction: 'outbound',
        routes: [
          {
            name: 'default',
            match: { pathPrefix: '/' },
            cluster: 'origin',
            // Istio's defaults, written out: a change of the built-in default must not change what this measures.
            retries: {
              maxRetries: 2,
              retryOn: [...DEFAULT_RETRY_ON],
              retriableStatusCodes: [503],
              backoff: { baseIntervalMs: 25, maxIntervalMs: 250 },
            },
            rateLimit: {
              requestsPerSecond: SKEIN_FULL_RATE_PER_S,
              burstSize: SKEIN_FULL_RATE_PER_S,
              keyExtractor: 'source_service',
              // closed: a Redis that cannot keep up shows as 429 errors in the report, never as free passes that
              // would make the target look cheaper than it is.
              ...(opts.redisUrl === undefined
                ? {}
                : { global: { redis: opts.redisUrl, failureMode: 'closed' as const, timeoutMs: 100 } }),
            },
          },
        ],
      },
    ],
    clusters: [
      {
        name: 'origin',
        service: 'bench-origin',
        discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${opts.originPort}` }] },
        healthChecks: {
          type: 'http',
          path: '/',
          expectedStatuses: [200],
          intervalMs: SKEIN_FULL_HEALTH_INTERVAL_MS,
          timeoutMs: 1000,
          healthyThreshold: 2,
          unhealthyThreshold: 3,
        },
        outlierDetection: {
          consecutive5xx: 5,
          consecutiveGatewayErrors: 5,
          intervalMs: 10_000,
          baseEjectionTimeMs: 30_000,
          maxEjectionPercent: 10,
        },
        // Envoy's thresholds: the closed loop's 50 connections stay far below them.
        circuitBreakers: {
          maxConnections: 1024,
          maxPendingRequests: 1024,
          maxRequests: 1024,
          maxRetries: 3,
          endpoint: {
            consecutiveFailures: 5,
            failureRatePercent: 50,
            minimumRequests: 20,
            windowMs: 10_000,
            openMs: 30_000,
            halfOpenRequests: 1,
          },
        },
      },
    ],
  };
}

export function skeinFullConfig(opts: SkeinFullOptions): string {
  const which = opts.redisUrl === undefined ? 'skein-full' : 'skein-full-global';
  return `# ${which} bench target (written by skein bench): every resilience stage configured, none firing.\n${stringify(
    skeinFullConfigObject(opts),
  )}`;
}
