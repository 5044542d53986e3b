// The rate-limit stage without sockets: which listeners get it, the listener's policy before the route's, keys
// by header, the RL reply with its Retry-After, and buckets that outlive a reload only while the policy is the
// same.
import { describe, expect, it } from 'vitest';
import type { CompiledListener } from '../../../src/config/compile.ts';
import { Config } from '../../../src/config/schema.ts';
import type { Cluster } from '../../../proxy/cluster.ts';
import type { RequestContext } from '../../../proxy/context.ts';
import type { Stage } from '../../../proxy/pipeline.ts';
import { rateLimitStage } from '../../../proxy/stages/rate-limit.ts';
import { StateStore } from '../../../proxy/stages/state.ts';

function build(listener: Record<string, unknown>, store = new StateStore()): Stage | null {
  const config = Config.parse({
    listeners: [{ name: 'main', address: '127.0.0.1:0', ...listener }],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }] } }],
  });
  const l = config.listeners[0];
  store.beginCompile();
  const stage = rateLimitStage.create({
    listener: { config: l } as unknown as CompiledListener<Cluster>,
    direction: 'outbound',
    protocol: 'http',
    config: (l.stages as Record<string, unknown> | undefined)?.['rate-limit'],
    state: store.scope('rate-limit', 'main'),
  });
  store.commit();
  return stage;
}

function request(route: number, headers: Record<string, string> = {}): RequestContext {
  return {
    route: { index: route, name: `r${route}` },
    header: (name: string) => headers[name],
    remoteAddress: '127.0.0.1',
    sourceService: 'web',
    retryAfterSec: 0,
  } as unknown as RequestContext;
}

/** The flags of `n` requests in a row ('' = let through). */
function run(stage: Stage, n: number, make: () => RequestContext): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = stage.onRequest!(make());
    if (v instanceof Promise) throw new Error('a local limit never waits');
    out.push(v === null ? '' : v.flag);
  }
  return out;
}

describe('rate-limit stage', () => {
  it('is left out of a listener with no policy', () => {
    expect(build({ routes: [{ cluster: 'app' }] })).toBeNull();
  });

  it('refuses beyond the burst with 429 RL (RESOURCE_EXHAUSTED for gRPC) and says when to retry', () => {
    const stage = build({ routes: [{ cluster: 'app', rateLimit: { requestsPerSecond: 0.5, burstSize: 2 } }] })!;
    expect(run(stage, 2, () => request(0))).toEqual(['', '']);
    const ctx = request(0);
    const v = stage.onRequest!(ctx);
    expect(v).toMatchObject({ status: 429, flag: 'RL', grpcStatus: 8 });
    expect(ctx.retryAfterSec).toBe(2); // one token every 2 s
  });

  it('applies the listener policy to every route, then the route its own', () => {
    const stage = build({
      stages: { 'rate-limit': { requestsPerSecond: 0.001, burstSize: 3 } },
      routes: [
        { match: { pathPrefix: '/a' }, cluster: 'app', rateLimit: { requestsPerSecond: 0.001, burstSize: 1 } },
        { cluster: 'app' },
      ],
    })!;
    // Route 0's own burst is 1: its second request is refused by the route (the listener counted it anyway).
    expect(run(stage, 2, () => request(0))).toEqual(['', 'RL']);
    // The listener's burst of 3 is spent by those two and one more.
    expect(run(stage, 2, () => request(1))).toEqual(['', 'RL']);
  });

  it('keys by a header: each value its own bucket, no header one shared key', () => {
    const stage = build({
      routes: [
        {
          cluster: 'app',
          rateLimit: { requestsPerSecond: 0.001, burstSize: 1, keyExtractor: 'header', header: 'X-User' },
        },
      ],
    })!;
    expect(run(stage, 2, () => request(0, { 'x-user': 'a' }))).toEqual(['', 'RL']);
    expect(run(stage, 2, () => request(0, { 'x-user': 'b' }))).toEqual(['', 'RL']);
    expect(run(stage, 2, () => request(0))).toEqual(['', 'RL']);
  });

  it('keeps its buckets across a reload with the same policy, and starts afresh when the policy changes', () => {
    const store = new StateStore();
    const listener = (burst: number) => ({
      routes: [{ name: 'api', cluster: 'app', rateLimit: { requestsPerSecond: 0.001, burstSize: burst } }],
    });
    expect(run(build(listener(1), store)!, 1, () => request(0))).toEqual(['']);
    expect(run(build(listener(1), store)!, 1, () => request(0))).toEqual(['RL']);
    expect(run(build(listener(2), store)!, 3, () => request(0))).toEqual(['', '', 'RL']);
    expect(store.size).toBe(1); // the old policy's buckets were let go
  });
});
