// The retry stage in the runner, without sockets: a listener's real chain (route, retry, breaker, LB pick) over a
// real Cluster whose endpoints' pools the test answers by hand. What a user would notice: a failed attempt is
// sent again to the other endpoint, a retriable answer is replaced and the last one flagged URX, a kept body
// goes out again whole, a per-try timeout bounds each attempt, and the budget and maxRetries hold retries back.
import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../../src/config/compile.ts';
import { Config } from '../../../src/config/schema.ts';
import { createLogger } from '../../../src/log.ts';
import { Cluster, type Endpoint } from '../../../proxy/cluster.ts';
import { RequestContext } from '../../../proxy/context.ts';
import { failureFlag, type RequestFlag, UpstreamError } from '../../../proxy/flags.ts';
import { handleRequest } from '../../../proxy/pipeline.ts';
import type { ListenerScope } from '../../../proxy/scope.ts';
import { buildChain } from '../../../proxy/stages/chain.ts';
import { StateStore } from '../../../proxy/stages/state.ts';
import type { FlatHeaders, OutboundRequest, ResponseSink } from '../../../proxy/upstream/types.ts';

interface Call {
  endpoint: string;
  req: OutboundRequest;
  sink: ResponseSink;
  aborted: boolean;
  /** The body this attempt read, as it arrived. */
  body: Buffer[];
}

interface Setup {
  scope: ListenerScope;
  cluster: Cluster;
  calls: Call[];
  retries: number[];
}

/** One listener routing to one cluster of two endpoints; `listener` and `cluster` add to their configs. */
function setup(
  opts: { retries?: unknown; listener?: Record<string, unknown>; cluster?: Record<string, unknown> } = {},
): Setup {
  const config = Config.parse({
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [{ cluster: 'app', ...(opts.retries === undefined ? {} : { retries: opts.retries }) }],
        ...opts.listener,
      },
    ],
    clusters: [
      {
        name: 'app',
        discovery: { type: 'static', endpoints: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] },
        ...opts.cluster,
      },
    ],
  });
  const log = createLogger('error', () => {});
  const cluster = new Cluster(config.clusters[0], 'key', { baseDir: '/', log });
  cluster.start(); // static discovery answers within start()
  const calls: Call[] = [];
  for (const ep of (cluster as unknown as { endpoints: Endpoint[] }).endpoints) {
    const pool = {
      connectionCount: 0,
      close() {},
      request(req: OutboundRequest, sink: ResponseSink) {
        const call: Call = { endpoint: ep.id, req, sink, aborted: false, body: [] };
        req.body?.on('data', (chunk: Buffer) => call.body.push(chunk));
        calls.push(call);
        return { abort: () => (call.aborted = true), resume() {} };
      },
    };
    ep.pool = () => pool;
  }
  const compiled = compileSnapshot(config, 1, () => cluster).listeners.get('main')!;
  const retries: number[] = [];
  const scope = {
    name: 'main',
    compiled,
    chain: buildChain(compiled, new StateStore()),
    direction: compiled.config.direction,
    outbound: compiled.config.direction === 'outbound',
    serviceName: 'client',
    stats: { inFlight: 0, onRequestEnd() {}, onRetry: () => retries.push(1) },
    telemetry: { tracer: null, onRequestEnd() {} },
    log,
  } as unknown as ListenerScope;
  return { scope, cluster, calls, retries };
}

class FakeContext extends RequestContext {
  readonly protocol = 'HTTP/1.1';
  readonly events: unknown[][] = [];
  body: Readable | null = null;
  contentLength = 0;
  constructor(listener: ListenerScope, grpc = false) {
    super(listener);
    this.method = 'GET';
    this.url = this.path = '/';
    this.isGrpc = grpc;
  }
  header(): string | undefined {
    return undefined;
  }
  upstreamHeaders(): FlatHeaders {
    return [];
  }
  requestBody(): { body: Readable | null; contentLength: number } {
    return { body: this.body, contentLength: this.contentLength };
  }
  replyLocal(status: number, flag: RequestFlag): void {
    this.events.push(['replyLocal', status, flag]);
    this.finish(status, flag);
  }
  respond(status: number, headers: FlatHeaders): void {
    this.events.push(['respond', status, ...headers]);
    this.status = status;
  }
  write(): boolean {
    return true;
  }
  end(): void {
    this.events.push(['end']);
    this.finish(this.status, '');
  }
  fail(err: UpstreamError): void {
    // As the HTTP/1.1 and HTTP/2 contexts answer a failure.
    const flag = failureFlag(this.flag, err.flag);
    this.events.push(['fail', flag]);
    this.finish(503, flag);
  }
  abortDownstream(): void {}
}

function run(s: Setup, prepare?: (ctx: FakeContext) => void): FakeContext {
  const ctx = new FakeContext(s.scope);
  prepare?.(ctx);
  handleRequest(ctx);
  return ctx;
}

function answer(call: Call, status: number, headers: FlatHeaders = []): void {
  call.sink.onResponse(status, headers, true);
  call.sink.onEnd(null, null);
}

/** The next attempt starts after a microtask, or a backoff timer: waits past both. */
const settle = () => new Promise((r) => setTimeout(r, 2));
const refused = () => new UpstreamError('UF', 'connect', 'connect ECONNREFUSED', false);
const reset = () => new UpstreamError('UC', 'upstream-reset', 'upstream reset', true);
/** No backoff wait (floor(random × 1) is 0), so a test needs no timers. */
const NO_BACKOFF = { backoff: { baseIntervalMs: 1, maxIntervalMs: 1 } };

describe('retry stage', () => {
  it('sends a GET whose connect failed to the other endpoint, and its answer reaches the client', async () => {
    const s = setup({ retries: NO_BACKOFF });
    const ctx = run(s);
    s.calls[0].sink.onError(refused());
    await settle();
    expect(s.calls).toHaveLength(2);
    expect(s.calls[1].endpoint).not.toBe(s.calls[0].endpoint);
    answer(s.calls[1], 200);
    expect(ctx.events).toEqual([['respond', 200], ['end']]);
    expect(ctx.flag).toBe('');
    expect(ctx.attemptNumber).toBe(2);
    expect(s.retries).toHaveLength(1);
    s.cluster.close();
  });

  it('is on by default on outbound listeners: 2 retries, then the last failure flagged UF,URX', async () => {
    const s = setup();
    const ctx = run(s);
    for (let i = 0; i < 3; i++) {
      s.calls[i].sink.onError(refused());
      await new Promise((r) => setTimeout(r, 300)); // past the longest default backoff
    }
    expect(s.calls).toHaveLength(3);
    // Both endpoints tried, then the first one again (there is no third).
    expect(new Set(s.calls.slice(0, 2).map((c) => c.endpoint)).size).toBe(2);
    expect(ctx.events).toEqual([['fail', 'UF,URX']]);
    s.cluster.close();
  });

  it('replaces a 503 answer, and passes the last one on flagged URX when every attempt answered 503', async () => {
    const s = setup({ retries: { maxRetries: 1, ...NO_BACKOFF } });
    const ctx = run(s);
    answer(s.calls[0], 503);
    expect(s.calls[0].aborted).toBe(true);
    await settle();
    answer(s.calls[1], 503, ['x-from', 'upstream']);
    expect(ctx.events).toEqual([['respond', 503, 'x-from', 'upstream', 'x-skein-flags', 'URX'], ['end']]);
    expect(ctx.flag).toBe('URX');
    s.cluster.close();
  });

  it('does not retry what its conditions leave out: a 500 by default, an overflow (UO) ever', async () => {
    const s = setup({ retries: { retryOn: ['5xx', 'connect-failure'], ...NO_BACKOFF } });
    const first = run(s);
    answer(s.calls[0], 404);
    expect(first.events).toEqual([['respond', 404], ['end']]);
    const second = run(s);
    s.calls[1].sink.onError(new UpstreamError('UO', 'overflow', 'pending overflow', false));
    await settle();
    expect(s.calls).toHaveLength(2);
    expect(second.events).toEqual([['fail', 'UO']]);
    const defaults = setup({ retries: NO_BACKOFF });
    const third = run(defaults);
    answer(defaults.calls[0], 500);
    expect(third.events).toEqual([['respond', 500], ['end']]);
    s.cluster.close();
    defaults.cluster.close();
  });

  it('is off with maxRetries 0, and on inbound listeners unless asked for', async () => {
    for (const s of [
      setup({ retries: { maxRetries: 0 } }),
      setup({ listener: { direction: 'inbound' } }),
      setup({ listener: { stages: { retry: { maxRetries: 0 } } } }),
    ]) {
      expect(s.scope.chain.names).not.toContain('retry');
      const ctx = run(s);
      s.calls[0].sink.onError(refused());
      await settle();
      expect(s.calls).toHaveLength(1);
      expect(ctx.events).toEqual([['fail', 'UF']]);
      s.cluster.close();
    }
    const inbound = setup({ listener: { direction: 'inbound', stages: { retry: NO_BACKOFF } } });
    expect(inbound.scope.chain.names).toContain('retry');
    inbound.cluster.close();
  });

  it('retries a gRPC call answered UNAVAILABLE in a trailers-only head, not one answered NOT_FOUND', async () => {
    const s = setup({ retries: NO_BACKOFF });
    const unavailable = new FakeContext(s.scope, true);
    handleRequest(unavailable);
    answer(s.calls[0], 200, ['content-type', 'application/grpc', 'grpc-status', '14']);
    await settle();
    answer(s.calls[1], 200, ['content-type', 'application/grpc', 'grpc-status', '0']);
    expect(unavailable.events[0]).toEqual(['respond', 200, 'content-type', 'application/grpc', 'grpc-status', '0']);
    const notFound = new FakeContext(s.scope, true);
    handleRequest(notFound);
    answer(s.calls[2], 200, ['grpc-status', '5']);
    expect(s.calls).toHaveLength(3);
    s.cluster.close();
  });

  it('sends a kept body again whole; a body over the limit is not retried', async () => {
    const s = setup({ retries: { bufferLimitBytes: 10, ...NO_BACKOFF } });
    const body = new PassThrough();
    const small = run(s, (ctx) => {
      ctx.method = 'POST';
      ctx.body = body;
      ctx.contentLength = -1; // chunked: kept as it streams, up to the limit
    });
    body.write('hello ');
    await settle();
    s.calls[0].sink.onError(reset());
    body.end('world'); // arrives while the next attempt is being made
    await settle();
    await settle();
    expect(Buffer.concat(s.calls[1].body).toString()).toBe('hello world');
    answer(s.calls[1], 200);
    expect(small.events).toEqual([['respond', 200], ['end']]);

    const big = new PassThrough();
    const large = run(s, (ctx) => {
      ctx.method = 'POST';
      ctx.body = big;
      ctx.contentLength = -1;
    });
    big.end('more than ten bytes');
    await settle();
    s.calls[2].sink.onError(reset());
    await settle();
    expect(s.calls).toHaveLength(3);
    expect(large.events).toEqual([['fail', 'UC']]);
    // A known length over the limit is not even kept.
    const declared = run(s, (ctx) => {
      ctx.method = 'PUT';
      ctx.body = new PassThrough();
      ctx.contentLength = 11;
    });
    expect(declared.bodyReplay).toBeNull();
    s.cluster.close();
  });

  it('bounds each attempt by the per-try timeout inside the request timeout, and retries a per-try UT', async () => {
    const s = setup({ retries: { perTryTimeoutMs: 100, ...NO_BACKOFF }, cluster: { timeouts: { requestMs: 5000 } } });
    const ctx = run(s);
    expect(s.calls[0].req.timeoutMs).toBe(100);
    s.calls[0].sink.onError(new UpstreamError('UT', 'timeout', 'timeout after 100 ms', true));
    await settle();
    expect(s.calls[1].endpoint).not.toBe(s.calls[0].endpoint);
    expect(s.calls[1].req.timeoutMs).toBe(100);
    answer(s.calls[1], 200);
    expect(ctx.events).toEqual([['respond', 200], ['end']]);

    // Less of the request's timeout left than a per-try: the attempt gets what is left, and its UT is final.
    const short = setup({ retries: { perTryTimeoutMs: 100, ...NO_BACKOFF }, cluster: { timeouts: { requestMs: 50 } } });
    const late = run(short);
    expect(short.calls[0].req.timeoutMs).toBe(50);
    short.calls[0].sink.onError(new UpstreamError('UT', 'timeout', 'timeout after 50 ms', true));
    await settle();
    expect(short.calls).toHaveLength(1);
    expect(late.events).toEqual([['fail', 'UT']]);
    s.cluster.close();
    short.cluster.close();
  });

  it('stops retrying when the cluster budget is spent, and counts what it refused', async () => {
    const s = setup({
      retries: NO_BACKOFF,
      cluster: { retryBudget: { retryRatio: 0.2, minRetriesPerSecond: 0 } },
    });
    for (let i = 0; i < 20; i++) {
      run(s);
      // Every attempt answers 503, until no further one is made.
      for (let before = 0; before !== s.calls.length;) {
        before = s.calls.length;
        answer(s.calls.at(-1)!, 503);
        await settle();
      }
    }
    // 20 requests: at most 20% of them (4) retried.
    expect(s.retries.length).toBe(4);
    expect(s.calls).toHaveLength(24);
    const budget = s.cluster.describe() as { retryBudget: { requests: number; retries: number; refused: number } };
    expect(budget.retryBudget).toMatchObject({ requests: 20, retries: 4 });
    expect(budget.retryBudget.refused).toBeGreaterThan(0);
    s.cluster.close();
  });

  it("holds one of the cluster's maxRetries slots per retry in flight and gives it back when the request ends", async () => {
    const s = setup({ retries: NO_BACKOFF, cluster: { circuitBreakers: { maxRetries: 1 } } });
    const a = run(s);
    const b = run(s);
    s.calls[0].sink.onError(refused());
    await settle();
    expect(s.cluster.limits.retries).toBe(1);
    s.calls[1].sink.onError(refused()); // no slot left: this failure is the answer
    await settle();
    expect(b.events).toEqual([['fail', 'UF']]);
    expect(s.cluster.limits.overflows.max_retries).toBe(1);
    answer(s.calls[2], 200);
    expect(a.events).toEqual([['respond', 200], ['end']]);
    expect(s.cluster.limits.retries).toBe(0);
    s.cluster.close();
  });
});
