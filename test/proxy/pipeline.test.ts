// The pipeline runner without sockets: a context whose downstream records what it was sent, fake stages, and
// a fake pool the test answers by hand, driven through every phase: request (sync, async, replies, throws),
// upstream result (accept, retry before a response byte, no retry after one), and finish.
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.ts';
import { RequestContext } from '../../proxy/context.ts';
import { FLAG, localReply, type ResponseFlag, UpstreamError } from '../../proxy/flags.ts';
import { chainOf, handleRequest, runTunnel, type Stage } from '../../proxy/pipeline.ts';
import type { ListenerScope } from '../../proxy/scope.ts';
import type { FlatHeaders, OutboundRequest, ResponseSink } from '../../proxy/upstream/types.ts';

interface Call {
  req: OutboundRequest;
  sink: ResponseSink;
  aborted: boolean;
}

/** A pool that records each request; the test plays the upstream through the recorded sink. */
function fakeEndpoint(id: string, calls: Call[]) {
  const pool = {
    connectionCount: 0,
    close() {},
    request(req: OutboundRequest, sink: ResponseSink) {
      const call: Call = { req, sink, aborted: false };
      calls.push(call);
      return {
        abort: () => {
          call.aborted = true;
        },
        resume() {},
      };
    },
  };
  return { id, host: '127.0.0.1', port: 1, labels: {}, pool: () => pool, speaksHttp2: () => false };
}

const cluster = { name: 'app', service: 'app', protocol: 'http1', requestTimeoutMs: 0, config: {} };
const route = { name: 'r', rewrite: undefined, removeHeaders: new Set(), setHeaders: [] };

function scope(stages: Stage[], logs: string[] = []): ListenerScope & { ended: RequestContext[] } {
  const ended: RequestContext[] = [];
  return {
    name: 'main',
    compiled: undefined as never,
    identity: null,
    chain: chainOf(stages),
    direction: 'outbound',
    outbound: true,
    serviceName: 'client',
    tcpPassthrough: null,
    stats: { inFlight: 0, onRequestEnd: (_: string, ctx: RequestContext) => ended.push(ctx) } as never,
    telemetry: { tracer: null, onRequestEnd() {} } as never,
    log: createLogger('debug', (line) => logs.push(line)),
    ended,
  };
}

type Event = [string, ...unknown[]];

class FakeContext extends RequestContext {
  readonly protocol = 'HTTP/1.1';
  readonly events: Event[] = [];
  body: Readable | null = null;

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
    return { body: this.body, contentLength: this.body === null ? 0 : -1 };
  }
  replyLocal(status: number, flag: ResponseFlag, message: string): void {
    this.events.push(['replyLocal', status, flag, message]);
    this.finish(status, flag);
  }
  respond(status: number): void {
    this.events.push(['respond', status]);
    this.status = status;
  }
  write(chunk: Buffer): boolean {
    this.events.push(['write', chunk.toString()]);
    return true;
  }
  end(): void {
    this.events.push(['end']);
    this.finish(this.status, '');
  }
  fail(err: UpstreamError): void {
    this.events.push(['fail', err.flag]);
    this.finish(this.status || 503, err.flag);
  }
  abortDownstream(): void {
    this.events.push(['abort']);
  }
}

/** Picks the next endpoint of `endpoints` on each attempt (a per-attempt stage, like lb-pick). */
function pickStage(endpoints: ReturnType<typeof fakeEndpoint>[], picks: string[]): Stage {
  let next = 0;
  return {
    name: 'pick',
    perAttempt: true,
    onRequest(ctx) {
      ctx.route = route as never;
      ctx.cluster = cluster as never;
      const ep = endpoints[next++ % endpoints.length];
      ctx.endpoint = ep as never;
      picks.push(ep.id);
      return null;
    },
  };
}

/** Asks for another attempt on an error or a 503, up to `max` attempts in all. */
function retryStage(max: number, seen: string[]): Stage {
  return {
    name: 'retry',
    onUpstreamResult(ctx, result) {
      seen.push(result.error !== null ? `error:${result.error.flag}` : `status:${result.status}`);
      const failed = result.error !== null || result.status === 503;
      return failed && ctx.upstreamAttempts < max ? 'retry' : 'accept';
    },
  };
}

const reset = () => new UpstreamError('UC', 'upstream-reset', 'upstream reset', true);
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('pipeline runner: request phase', () => {
  it('runs the request stages in order and forwards once they all let the request through', () => {
    const order: string[] = [];
    const calls: Call[] = [];
    const mark = (name: string): Stage => ({ name, onRequest: () => (order.push(name), null) });
    const ctx = new FakeContext(scope([mark('a'), mark('b'), pickStage([fakeEndpoint('e1', calls)], [])]));
    handleRequest(ctx);
    expect(order).toEqual(['a', 'b']);
    expect(calls).toHaveLength(1);
  });

  it('answers with the reply a stage returns, and no later stage runs', () => {
    const later: string[] = [];
    const deny: Stage = { name: 'deny', onRequest: () => localReply(FLAG.RateLimited) };
    const after: Stage = { name: 'after', onRequest: () => (later.push('ran'), null) };
    const ctx = new FakeContext(scope([deny, after]));
    handleRequest(ctx);
    expect(ctx.events).toEqual([['replyLocal', 429, 'RL', 'rate limited']]);
    expect(later).toEqual([]);
    expect(ctx.finished).toBe(true);
  });

  it('waits for a stage that answers with a promise, then goes on with the next stage', async () => {
    const calls: Call[] = [];
    let release: (v: null) => void = () => {};
    const waits: Stage = { name: 'waits', onRequest: () => new Promise((r) => (release = r)) };
    const ctx = new FakeContext(scope([waits, pickStage([fakeEndpoint('e1', calls)], [])]));
    handleRequest(ctx);
    expect(calls).toHaveLength(0);
    release(null);
    await tick();
    expect(calls).toHaveLength(1);
  });

  it('answers with the reply an asynchronous stage resolves to', async () => {
    const deny: Stage = { name: 'deny', onRequest: async () => localReply(FLAG.RateLimited) };
    const ctx = new FakeContext(scope([deny]));
    handleRequest(ctx);
    await tick();
    expect(ctx.events).toEqual([['replyLocal', 429, 'RL', 'rate limited']]);
  });

  it('does nothing more for a request that ended while its stage was waiting', async () => {
    const calls: Call[] = [];
    let release: (v: null) => void = () => {};
    const waits: Stage = { name: 'waits', onRequest: () => new Promise((r) => (release = r)) };
    const ctx = new FakeContext(scope([waits, pickStage([fakeEndpoint('e1', calls)], [])]));
    handleRequest(ctx);
    ctx.finish(499, FLAG.DownstreamDisconnect);
    release(null);
    await tick();
    expect(calls).toHaveLength(0);
    expect(ctx.flag).toBe('DC');
  });

  it.each([
    [
      'synchronously',
      (): Stage['onRequest'] => () => {
        throw new Error('boom');
      },
    ],
    ['in its promise', (): Stage['onRequest'] => () => Promise.reject(new Error('boom'))],
  ])('ends the request with 500 IE when a stage throws %s', async (_, make) => {
    const logs: string[] = [];
    const ctx = new FakeContext(scope([{ name: 'boom', onRequest: make() }], logs));
    handleRequest(ctx);
    await tick();
    expect(ctx.events).toEqual([['replyLocal', 500, 'IE', 'internal error']]);
    expect(logs.join('')).toContain('boom');
  });
});

describe('pipeline runner: upstream result phase', () => {
  it('makes another attempt on another endpoint after an error before the response, unseen downstream', async () => {
    const calls: Call[] = [];
    const picks: string[] = [];
    const seen: string[] = [];
    const eps = [fakeEndpoint('e1', calls), fakeEndpoint('e2', calls)];
    const ctx = new FakeContext(scope([pickStage(eps, picks), retryStage(3, seen)]));
    handleRequest(ctx);
    calls[0].sink.onError(reset());
    await tick();
    expect(picks).toEqual(['e1', 'e2']);
    expect(calls).toHaveLength(2);
    calls[1].sink.onResponse(200, [], false);
    calls[1].sink.onData(Buffer.from('hello'));
    calls[1].sink.onEnd(null, null);
    expect(ctx.events).toEqual([['respond', 200], ['write', 'hello'], ['end']]);
    expect(seen).toEqual(['error:UC', 'status:200']);
    expect(ctx.upstreamAttempts).toBe(2);
    expect(ctx.status).toBe(200);
  });

  it('replaces an attempt whose response head a stage refuses (503) before any byte goes downstream', async () => {
    const calls: Call[] = [];
    const ctx = new FakeContext(scope([pickStage([fakeEndpoint('e1', calls)], []), retryStage(2, [])]));
    handleRequest(ctx);
    calls[0].sink.onResponse(503, [], false);
    expect(calls[0].aborted).toBe(true);
    // Whatever the replaced attempt's pool still had in hand is dropped.
    calls[0].sink.onData(Buffer.from('unavailable'));
    calls[0].sink.onEnd(null, null);
    await tick();
    calls[1].sink.onResponse(200, [], true);
    calls[1].sink.onEnd(null, null);
    expect(ctx.events).toEqual([['respond', 200], ['end']]);
  });

  it('makes no further attempt once a response byte has gone downstream: the failure reaches the client', async () => {
    const calls: Call[] = [];
    const seen: string[] = [];
    const ctx = new FakeContext(scope([pickStage([fakeEndpoint('e1', calls)], []), retryStage(5, seen)]));
    handleRequest(ctx);
    calls[0].sink.onResponse(200, [], false);
    calls[0].sink.onData(Buffer.from('part'));
    calls[0].sink.onError(reset());
    await tick();
    expect(calls).toHaveLength(1);
    expect(seen).toEqual(['status:200']);
    expect(ctx.events).toEqual([
      ['respond', 200],
      ['write', 'part'],
      ['fail', 'UC'],
    ]);
  });

  it('hands the last outcome downstream when the stages stop asking for attempts', async () => {
    const calls: Call[] = [];
    const ctx = new FakeContext(scope([pickStage([fakeEndpoint('e1', calls)], []), retryStage(2, [])]));
    handleRequest(ctx);
    calls[0].sink.onError(reset());
    await tick();
    calls[1].sink.onError(reset());
    await tick();
    expect(calls).toHaveLength(2);
    expect(ctx.events).toEqual([['fail', 'UC']]);
    expect(ctx.upstreamAttempts).toBe(2);
  });

  it('does not retry a request whose streamed body the failed attempt consumed', async () => {
    const calls: Call[] = [];
    const ctx = new FakeContext(scope([pickStage([fakeEndpoint('e1', calls)], []), retryStage(3, [])]));
    ctx.body = { readableEnded: false } as Readable;
    handleRequest(ctx);
    calls[0].sink.onError(reset());
    await tick();
    expect(calls).toHaveLength(1);
    expect(ctx.events).toEqual([['fail', 'UC']]);
  });
});

describe('pipeline runner: finish phase', () => {
  it('tells every finishing stage once, in order, with the outcome, before the request is recorded', async () => {
    const calls: Call[] = [];
    const seen: string[] = [];
    const note = (name: string): Stage => ({
      name,
      onFinish: (ctx) => seen.push(`${name}:${ctx.status}:${ctx.flag}`),
    });
    const s = scope([pickStage([fakeEndpoint('e1', calls)], []), note('a'), note('b')]);
    const ok = new FakeContext(s);
    handleRequest(ok);
    calls[0].sink.onResponse(200, [], true);
    calls[0].sink.onEnd(null, null);
    ok.finish(500, 'IE'); // a second finish is ignored
    const denied = new FakeContext(scope([{ name: 'deny', onRequest: () => localReply(FLAG.NoRoute) }, note('a')]));
    handleRequest(denied);
    expect(seen).toEqual(['a:200:', 'b:200:', 'a:404:NR']);
    expect(s.ended).toEqual([ok]);
  });

  it('logs a finishing stage that throws and still records the request', () => {
    const logs: string[] = [];
    const boom: Stage = {
      name: 'boom',
      onFinish() {
        throw new Error('finish exploded');
      },
    };
    const s = scope([{ name: 'deny', onRequest: () => localReply(FLAG.NoRoute) }, boom], logs);
    const ctx = new FakeContext(s);
    handleRequest(ctx);
    expect(s.ended).toEqual([ctx]);
    expect(logs.join('')).toContain('finish exploded');
  });

  it('runs a tunnel through the request stages, then opens it', () => {
    const opened: string[] = [];
    const calls: Call[] = [];
    const ctx = new FakeContext(scope([pickStage([fakeEndpoint('e1', calls)], [])]));
    runTunnel(ctx, (c) => opened.push(c.endpoint!.id));
    expect(opened).toEqual(['e1']);
    expect(calls).toHaveLength(0);
  });

  it('counts a request in flight from its start to its finish', () => {
    const s = scope([{ name: 'deny', onRequest: () => localReply(FLAG.NoRoute) }]);
    const ctx = new FakeContext(s);
    expect(s.stats.inFlight).toBe(1);
    handleRequest(ctx);
    expect(s.stats.inFlight).toBe(0);
  });
});
