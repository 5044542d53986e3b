// A cluster's `healthChecks` (active: HTTP, gRPC health, TCP connect) and `outlierDetection` (passive: consecutive
// errors eject an endpoint for a while). Defaults are Envoy's where it has them; schema.ts puts both on the Cluster.
import { z } from 'zod';

const Millis = z.number().int().nonnegative();
const Percent = z.number().min(0).max(100);

const checkTiming = {
  /** Between two checks of one endpoint. */
  intervalMs: z.number().int().min(1).default(5_000),
  /** A check that has not passed within this fails. */
  timeoutMs: z.number().int().min(1).default(1_000),
  /** Up to this share of the interval is added at random to each wait, so checks don't all fire together. */
  jitterPercent: Percent.default(10),
  /** Passing checks in a row that bring an unhealthy endpoint back. */
  healthyThreshold: z.number().int().min(1).default(2),
  /** Failing checks in a row that take an endpoint out of the load-balancing set. */
  unhealthyThreshold: z.number().int().min(1).default(3),
};

export const HealthChecks = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('http'),
    path: z.string().startsWith('/').default('/health'),
    /** Host header; the cluster's service name when absent. */
    host: z.string().min(1).optional(),
    /** Statuses that pass; anything else (or no answer) fails. */
    expectedStatuses: z.array(z.number().int().min(100).max(599)).min(1).default([200]),
    ...checkTiming,
  }),
  z.strictObject({
    type: z.literal('grpc'),
    /** The service name in grpc.health.v1 Health/Check; empty asks about the server as a whole. */
    service: z.string().default(''),
    ...checkTiming,
  }),
  z.strictObject({ type: z.literal('tcp'), ...checkTiming }),
]);

export const OutlierDetection = z.strictObject({
  /** 5xx answers or gateway errors in a row that eject an endpoint; 0 turns this count off. */
  consecutive5xx: z.number().int().min(0).default(5),
  /** 502/503/504, connect failures, resets and timeouts in a row that eject; 0 turns this count off. */
  consecutiveGatewayErrors: z.number().int().min(0).default(5),
  /** How often ejected endpoints are looked at to bring them back. */
  intervalMs: z.number().int().min(1).default(10_000),
  /** An ejection lasts this × the endpoint's ejections in a row, up to maxEjectionTimeMs. */
  baseEjectionTimeMs: Millis.default(30_000),
  maxEjectionTimeMs: Millis.default(300_000),
  /** At most this share of the cluster is ejected at once (but one endpoint always may be). */
  maxEjectionPercent: Percent.default(10),
});

export type HealthChecksConfig = z.infer<typeof HealthChecks>;
export type OutlierDetectionConfig = z.infer<typeof OutlierDetection>;
