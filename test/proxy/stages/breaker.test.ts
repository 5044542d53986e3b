// The breaker stage in the runner, without sockets: a real Cluster (static endpoints whose pools the test
// plays by hand), the breaker and LB-pick stages, and a retry stage like the one the retry work builds. What a
// user would see: one maxRequests slot per request across its attempts, a retried attempt counted against its
// endpoint's breaker, an open endpoint skipped by the pick, and UO when none lets a request through.
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Config } from '../../../src/config/schema.ts';
import { createLogger } from '../../../src/log.ts';
import { Cluster, type Endpoint } from '../../../proxy/cluster.ts';
import { RequestContext } from '../../../proxy/context.ts';
import { type ResponseFlag, UpstreamError } from '../../../proxy/flags.ts';
import { chainOf, handleRequest, type Stage } from '../../../proxy/pipeline.ts';
import type { ListenerScope } from '../../../proxy/scope.ts';
import { breakerStage } from '../../../proxy/stages/breaker.ts';
import { lbPickStage } from '../../../proxy/stages/lb-pick.ts';
import type { FlatHeaders, OutboundRequest, ResponseSink } from '../../../proxy/upstream/types.ts';

interface Call {
  endpoint: string;
  sink: ResponseSink;
}

function makeCluster(circuitBreakers: Record<string, unknown>): { cluster: Cluster; calls: Call[] } {
  const config = Config.parse({
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
    clusters: [
      {
        name: 'app',
        discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] },
        circuitBreakers,
      },
    ],
  });
  const log = createLogger('error', () => {});
  const cluster = new Cluster(config.clusters[0], 'key', { baseDir: '/', log });
  cluster.start();
  const calls: Call[] = [];
  for (const ep of (cluster as unknown as { endpoints: Endpoint[] }).endpoints) {
    const pool = {
      connectionCount: 0,
      close() {},
      request(_req: OutboundRequest, sink: ResponseSink) {
        calls.push({ endpoint: ep.id, sink });
        return { abort() {}, resume() {} };
      },
    };
    ep.pool = () => pool;
  }
  return { cluster, calls };
}

class FakeContext extends RequestContext {
  readonly protocol = 'HTTP/1.1';
  readonly events: unknown[][] = [];
  constructor(listener: ListenerScope) {
    super(listener);
    this.method = 'GET';
    this.url = this.path = '/';
  }
  header(): string | undefined {
    return undefined;
  }
  upstreamHeaders(): FlatHeaders {
    return [];
  }
  requestBody(): { body: Readable | null; contentLength: number } {
    return { body: null, contentLength: 0 };
  }
  replyLocal(status: number, flag: ResponseFlag): void {
    this.events.push(['replyLocal', status, flag]);
    this.finish(status, flag);
  }
  respond(status: number): void {
    this.events.push(['respond', status]);
    this.status = status;
  }
  write(): boolean {
    return true;
  }
  end(): void {
    this.finish(this.status, '');
  }
  fail(err: UpstreamError): void {
    this.events.push(['fail', err.flag]);
    this.finish(503, err.flag);
  }
  abortDownstream(): void {}
}

function run(cluster: Cluster, retries: number): FakeContext {
  const route: Stage = {
    name: 'route',
    onRequest(ctx) {
      ctx.route = { name: 'r', rewrite: undefined } as never;
      ctx.cluster = cluster;
      return null;
    },
  };
  const retry: Stage = {
    name: 'retry',
    onUpstreamResult: (ctx, r) =>
      (r.error !== null || r.status >= 500) && ctx.upstreamAttempts <= retries ? 'retry' : 'accept',
  };
  const stages = [route, retry, breakerStage.create({} as never)!, lbPickStage.create({} as never)!];
  const scope = {
    name: 'main',
    chain: chainOf(stages),
    direction: 'outbound',
    outbound: true,
    serviceName: 'client',
    stats: { inFlight: 0, onRequestEnd() {} },
    telemetry: { tracer: null, onRequestEnd() {} },
    log: createLogger('error', () => {}),
  } as unknown as ListenerScope;
  const ctx = new FakeContext(scope);
  handleRequest(ctx);
  return ctx;
}

function answer(call: Call, status: number): void {
  call.sink.onResponse(status, [], true);
  call.sink.onEnd(null, null);
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const reset = () => new UpstreamError('UC', 'upstream-reset', 'upstream reset', true);

describe('breaker stage', () => {
  it('holds one maxRequests slot per request across its retries, and refuses the next one with UO', async () => {
    const { cluster, calls } = makeCluster({ maxRequests: 1 });
    const first = run(cluster, 1);
    calls[0].sink.onError(reset());
    await tick();
    expect(calls[1].endpoint).not.toBe(calls[0].endpoint); // round robin: the retry goes to the other one
    expect(cluster.limits.requests).toBe(1);
    const second = run(cluster, 1);
    expect(second.events).toEqual([['replyLocal', 503, 'UO']]);
    answer(calls[1], 200);
    expect(first.events).toEqual([['respond', 200]]);
    expect(cluster.limits.requests).toBe(0);
    expect(cluster.limits.overflows.max_requests).toBe(1);
    cluster.close();
  });

  it('counts a retried attempt against its endpoint; an open endpoint is skipped; none open: UO', async () => {
    const { cluster, calls } = makeCluster({ endpoint: { consecutiveFailures: 1, openMs: 60_000 } });
    run(cluster, 1);
    calls[0].sink.onError(reset()); // its endpoint's breaker opens; the retry goes to the other endpoint
    await tick();
    answer(calls[1], 200);
    expect(cluster.breakersNotClosed).toBe(1);
    // Round robin would pick the first endpoint every other time: its breaker is open, so the other gets them.
    for (let i = 0; i < 3; i++) {
      run(cluster, 0);
      answer(calls.at(-1)!, 200);
    }
    expect(calls.slice(2).map((c) => c.endpoint)).toEqual(Array(3).fill(calls[1].endpoint));
    // The other fails once: both open, the next request is refused before any pick.
    run(cluster, 0);
    answer(calls.at(-1)!, 503);
    expect(cluster.breakersNotClosed).toBe(2);
    const refused = run(cluster, 0);
    expect(refused.events).toEqual([['replyLocal', 503, 'UO']]);
    expect(cluster.limits.requests).toBe(0);
    cluster.close();
  });
});
