// A rate limit policy (the seed's names: requestsPerSecond, burstSize, keyExtractor): on a route (`rateLimit`)
// and/or on a listener (`stages.rate-limit`). Local: a token bucket per key in this process. With `global`: one
// limit shared by every replica, kept in Redis (GCRA). Imported by schema.ts and stages.ts.
import { z } from 'zod';

const REDIS_URL = /^rediss?:\/\/[^\s]+$/;

/** The shared limit's store and what happens when it cannot be reached. */
export const GlobalRateLimit = z.strictObject({
  /** Redis address; one connection per process per address, kept across reloads. */
  redis: z.string().regex(REDIS_URL, 'expected redis://host:port (or rediss://)'),
  /** Redis unreachable or too slow: open lets requests through, closed answers 429 RL. */
  failureMode: z.enum(['open', 'closed']).default('open'),
  /** A Redis answer later than this counts as unreachable for that request. */
  timeoutMs: z.number().int().min(1).max(10_000).default(100),
  /** Names the shared limit in Redis: replicas with the same name (and key) share one limit. Default: the
   *  listener's name, plus the route's for a route policy. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, _ . : - only')
    .optional(),
});

export const RateLimitPolicy = z
  .strictObject({
    /** Sustained rate per key. */
    requestsPerSecond: z.number().positive().max(1_000_000),
    /** Requests a key may send at once after being idle (the bucket's size). Default: requestsPerSecond, at least 1. */
    burstSize: z.number().int().min(1).max(1_000_000).optional(),
    /** What a request is counted under: the calling service, a header's value, the client address, the route. */
    keyExtractor: z.enum(['source_service', 'header', 'client_ip', 'route']).default('source_service'),
    /** keyExtractor header: the header whose value is the key (requests without it share the key ""). */
    header: z.string().min(1).toLowerCase().optional(),
    /** Keys tracked at once (least recently used dropped beyond it), so random keys can't grow memory. */
    maxKeys: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Share the limit across replicas through Redis. */
    global: GlobalRateLimit.optional(),
  })
  .refine((p) => p.keyExtractor !== 'header' || p.header !== undefined, {
    message: 'keyExtractor header needs header: <name>',
    path: ['header'],
  });

export type RateLimitPolicyConfig = z.infer<typeof RateLimitPolicy>;
export type GlobalRateLimitConfig = z.infer<typeof GlobalRateLimit>;
