// The rate-limit stage: a listener's `stages.rate-limit` policy over all its requests, then the matched route's
// `rateLimit`, each counting the request under its key (source service, a header, client address or route).
// Local policies take a token from a bucket kept in the state store (so a reload keeps the counts); global ones
// ask Redis (src/resilience/rate-limit.ts), except for a key Redis already said is over its limit until later.
// Over the limit: 429 with Retry-After and flag RL (gRPC RESOURCE_EXHAUSTED). Redis unreachable: the policy's
// failureMode lets the request through (open) or refuses it (closed). Left out of listeners with no policy.
import type { RateLimitPolicyConfig } from '../../src/config/rate-limit-schema.ts';
import { GlobalLimiter, type GlobalVerdict, leaseRedis, TokenBuckets } from '../../src/resilience/rate-limit.ts';
import type { RequestContext } from '../context.ts';
import { FLAG, localReply } from '../flags.ts';
import type { RequestVerdict } from '../pipeline.ts';
import type { StageState } from './state.ts';
import type { StageDefinition } from './types.ts';

const LIMITED = localReply(FLAG.RateLimited);
/** Between two warnings that a limit's Redis can't be reached. */
const WARN_EVERY_MS = 10_000;

interface Limiter {
  readonly keyOf: (ctx: RequestContext) => string;
  readonly local: TokenBuckets | null;
  readonly global: GlobalLimiter | null;
  readonly failClosed: boolean;
  readonly redis: string;
  lastWarnMs: number;
}

function keyFunction(policy: RateLimitPolicyConfig): (ctx: RequestContext) => string {
  switch (policy.keyExtractor) {
    case 'source_service':
      return (ctx) => ctx.sourceService;
    case 'client_ip':
      return (ctx) => ctx.remoteAddress;
    case 'route':
      return (ctx) => ctx.route!.name || String(ctx.route!.index);
    case 'header': {
      const name = policy.header!;
      return (ctx) => ctx.header(name) ?? '';
    }
  }
}

/** A policy's limiter; its counts are kept in the store under the policy's text, so only a changed policy
 *  starts afresh on reload. */
function compileLimiter(policy: RateLimitPolicyConfig, where: string, listener: string, state: StageState): Limiter {
  const burst = policy.burstSize ?? Math.max(1, Math.floor(policy.requestsPerSecond));
  const id = `${where}\u0000${JSON.stringify(policy)}`;
  const g = policy.global;
  let global: GlobalLimiter | null = null;
  if (g !== undefined) {
    const lease = state.get(`redis\u0000${g.redis}`, () => leaseRedis(g.redis, { timeoutMs: g.timeoutMs }));
    const name = g.name ?? (where === 'listener' ? listener : `${listener}:${where}`);
    global = state.get(
      `global\u0000${id}`,
      () => new GlobalLimiter(lease, name, policy.requestsPerSecond, burst, policy.maxKeys),
    );
  }
  return {
    keyOf: keyFunction(policy),
    local:
      g !== undefined
        ? null
        : state.get(`local\u0000${id}`, () => new TokenBuckets(policy.requestsPerSecond, burst, policy.maxKeys)),
    global,
    failClosed: g?.failureMode === 'closed',
    redis: g?.redis ?? '',
    lastWarnMs: -WARN_EVERY_MS,
  };
}

function limited(ctx: RequestContext, waitMs: number): RequestVerdict {
  ctx.retryAfterSec = Math.max(1, Math.ceil(waitMs / 1000));
  return LIMITED;
}

/** Runs `limiters` from `from` on; a promise once one has to ask Redis. */
function check(
  ctx: RequestContext,
  limiters: readonly Limiter[],
  from: number,
): RequestVerdict | Promise<RequestVerdict> {
  for (let i = from; i < limiters.length; i++) {
    const l = limiters[i];
    const key = l.keyOf(ctx);
    const now = performance.now();
    if (l.local !== null) {
      const wait = l.local.take(key, now);
      if (wait > 0) return limited(ctx, wait);
      continue;
    }
    const blocked = l.global!.blockedFor(key, now);
    if (blocked > 0) return limited(ctx, blocked);
    return l.global!.check(key).then((v) => afterRedis(ctx, limiters, i, now, v));
  }
  return null;
}

function afterRedis(
  ctx: RequestContext,
  limiters: readonly Limiter[],
  i: number,
  startMs: number,
  v: GlobalVerdict,
): RequestVerdict | Promise<RequestVerdict> {
  const l = limiters[i];
  const now = performance.now();
  ctx.listener.stats.observeRateLimitRedis(
    (now - startMs) / 1000,
    v === 'unavailable' ? 'error' : v.allowed ? 'allowed' : 'limited',
  );
  if (v === 'unavailable') {
    if (now - l.lastWarnMs >= WARN_EVERY_MS) {
      l.lastWarnMs = now;
      ctx.listener.log.warn('rate limit: redis unavailable', {
        listener: ctx.listener.name,
        redis: l.redis,
        failureMode: l.failClosed ? 'closed' : 'open',
      });
    }
    if (l.failClosed) return limited(ctx, 1000);
  } else if (!v.allowed) return limited(ctx, v.retryAfterMs);
  return check(ctx, limiters, i + 1);
}

export const rateLimitStage: StageDefinition = {
  name: 'rate-limit',
  protocols: ['http'],
  create({ listener, config, state }) {
    const name = listener.config.name;
    const listenerLimiter =
      config === undefined ? null : compileLimiter(config as RateLimitPolicyConfig, 'listener', name, state);
    // By the route's index in the config (CompiledRoute.index): one array read per request.
    const routes: (Limiter | undefined)[] = listener.config.routes.map((r, i) =>
      r.rateLimit === undefined ? undefined : compileLimiter(r.rateLimit, `route:${r.name ?? i}`, name, state),
    );
    if (listenerLimiter === null && routes.every((l) => l === undefined)) return null;
    // The limiters a request of each route goes through, in order: the listener's, then the route's.
    const chains: (readonly Limiter[])[] = routes.map((r) =>
      [listenerLimiter, r].filter((l): l is Limiter => l !== null && l !== undefined),
    );
    return {
      name: 'rate-limit',
      onRequest(ctx) {
        const limiters = chains[ctx.route!.index];
        return limiters.length === 0 ? null : check(ctx, limiters, 0);
      },
    };
  },
};
