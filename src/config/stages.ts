// The config blocks of pipeline stages that take one (a listener's `stages.<name>`), by stage name. The schema
// builds the listener's `stages` object from this map, so `skein config check`, `skein config schema` and
// control validate them like every other field; the proxy's stage registry (proxy/stages/registry.ts) pairs
// each name with its factory and refuses to start if a name here has none.
import { z } from 'zod';
import { Authorization } from './authorization-schema.ts';
import { RateLimitPolicy } from './rate-limit-schema.ts';
import { RetryPolicy } from './retry-schema.ts';

export const STAGE_CONFIGS: Readonly<Record<string, z.ZodType>> = {
  /** Who may call an inbound listener (authorization-schema.ts); control adds its policies for the service. */
  authorization: Authorization,
  /** A rate limit over every request of the listener (a route's `rateLimit` adds its own). */
  'rate-limit': RateLimitPolicy,
  /** The retry policy of the listener's routes that have no `retries` of their own (`maxRetries: 0`: none). */
  retry: RetryPolicy,
};

export const ListenerStages = z.strictObject(
  Object.fromEntries(Object.entries(STAGE_CONFIGS).map(([name, schema]) => [name, schema.optional()])),
);
