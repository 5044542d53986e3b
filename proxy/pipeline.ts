// The request pipeline's runner: the listener's compiled stage chain (stages/chain.ts) run phase by phase for
// one request, then the upstream call, each attempt through its own sink (Attempt) so a failed attempt can be
// replaced before the downstream sees a byte of it. HTTP/1.1, HTTP/2 and gRPC forward upstream; WebSocket and
// TCP run the same request and finish phases and then open their tunnel (websocket.ts, tcp.ts).
import type { Readable } from 'node:stream';
import { BodyReplay } from './body-replay.ts';
import type { LocalReply } from './flags.ts';
import { FLAG, FLAG_HEADER, type UpstreamError } from './flags.ts';
import type { RequestContext } from './context.ts';
import type { Endpoint } from './cluster.ts';
import type { EndpointPool, Exchange, FlatHeaders, OutboundRequest, ResponseSink } from './upstream/types.ts';

/** onRequest's answer: null to go on with the next stage, a LocalReply to answer with it now. */
export type RequestVerdict = LocalReply | null;

/** What an attempt came back with, as onUpstreamResult sees it: a response head, or an error before one. */
export interface UpstreamResult {
  /** The response head's status; 0 when the attempt failed before one arrived. */
  readonly status: number;
  readonly headers: FlatHeaders | null;
  readonly error: UpstreamError | null;
}

export type ResultVerdict = 'accept' | 'retry';

/**
 * One stage of the pipeline. Every phase is optional (a stage without it costs nothing there): the chain keeps
 * one list per phase. A stage knows nothing of the stages beside it and keeps no state of its own that must
 * outlive a reload (stages/state.ts holds that).
 */
export interface Stage {
  readonly name: string;
  /** Runs again before every further attempt (the endpoint pick; a breaker's admission). */
  readonly perAttempt?: boolean;
  /** May return a promise (a limit kept elsewhere); the synchronous case costs a plain loop. */
  onRequest?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  /** Before any response byte went downstream: accept this attempt's outcome or ask for another attempt. Every
   *  result stage sees every attempt; one 'retry' is enough. */
  onUpstreamResult?(ctx: RequestContext, result: UpstreamResult): ResultVerdict;
  /** Once per request, whatever its outcome (ctx.status, ctx.flag), before telemetry records it. */
  onFinish?(ctx: RequestContext): void;
}

/** A listener's stages in their direction's order, one list per phase (built by stages/chain.ts). */
export interface StageChain {
  readonly names: readonly string[];
  readonly request: Stage[];
  readonly attempt: Stage[];
  readonly result: Stage[];
  readonly finish: Stage[];
}

export function chainOf(stages: readonly Stage[]): StageChain {
  return {
    names: stages.map((s) => s.name),
    request: stages.filter((s) => s.onRequest !== undefined),
    attempt: stages.filter((s) => s.perAttempt === true && s.onRequest !== undefined),
    result: stages.filter((s) => s.onUpstreamResult !== undefined),
    finish: stages.filter((s) => s.onFinish !== undefined),
  };
}

/** What happens once the request stages let a request through: forward it, or open its tunnel. */
export type Proceed = (ctx: RequestContext) => void;

/**
 * Runs a request: its trace starts, the request stages run in order, then `proceed` (by default the upstream
 * call). The exception boundary of the request path starts here: whatever a stage, the header conversion or the
 * pool throws ends this request with 500 IE (ctx.onException), never the connection's other requests or the
 * process. The pools guard their own calls into the attempt (the upstream's answer) the same way.
 */
export function handleRequest(ctx: RequestContext): void {
  try {
    const telemetry = ctx.listener.telemetry;
    if (telemetry.tracer !== null) {
      ctx.tracer = telemetry.tracer;
      ctx.trace = telemetry.startTrace(ctx, (name) => ctx.header(name));
    }
    runStages(ctx, ctx.listener.chain.request, 0, forward);
  } catch (err) {
    ctx.onException(err, FLAG.InternalError);
  }
}

/** A tunnel (WebSocket, TCP): the request stages, then `proceed` opens it; the finish phase runs at its end. */
export function runTunnel(ctx: RequestContext, proceed: Proceed): void {
  try {
    runStages(ctx, ctx.listener.chain.request, 0, proceed);
  } catch (err) {
    ctx.onException(err, FLAG.InternalError);
  }
}

/** The request stages from `from` on; a stage that returns a promise suspends the loop until it settles. */
function runStages(ctx: RequestContext, stages: readonly Stage[], from: number, proceed: Proceed): void {
  for (let i = from; i < stages.length; i++) {
    const verdict = stages[i].onRequest!(ctx);
    if (verdict === null) continue;
    if (verdict instanceof Promise) {
      verdict.then(
        (v) => resume(ctx, stages, i + 1, proceed, v),
        (err: unknown) => ctx.finished || ctx.onException(err, FLAG.InternalError),
      );
      return;
    }
    ctx.replyLocal(verdict.status, verdict.flag, verdict.message, verdict.grpcStatus);
    return;
  }
  proceed(ctx);
}

function resume(ctx: RequestContext, stages: readonly Stage[], next: number, proceed: Proceed, v: RequestVerdict) {
  if (ctx.finished) return; // the downstream went away while the stage waited
  try {
    if (v !== null) ctx.replyLocal(v.status, v.flag, v.message, v.grpcStatus);
    else runStages(ctx, stages, next, proceed);
  } catch (err) {
    ctx.onException(err, FLAG.InternalError);
  }
}

/**
 * `protocol: auto`: HTTP/1.1 downstream → HTTP/1.1; gRPC → HTTP/2; any other HTTP/2 request → HTTP/2 unless the
 * endpoint refused it lately (Endpoint.speaksHttp2), and back to HTTP/1.1 by the h2 pool if it refuses now.
 */
function upstreamPool(ctx: RequestContext, ep: Endpoint, nowMs: number): EndpointPool {
  const p = ctx.cluster!.protocol;
  if (p === 'http1' || (p === 'auto' && ctx.protocol !== 'HTTP/2')) return ep.pool('http1');
  if (p === 'http2' || ctx.isGrpc || ep.speaksHttp2(nowMs)) return ep.pool('http2');
  return ep.pool('http1');
}

/** The upstream call: one attempt to the endpoint the stages picked. */
export function forward(ctx: RequestContext): void {
  const ep = ctx.endpoint!;
  const route = ctx.route!;
  let path = ctx.url;
  const rw = route.rewrite;
  if (rw !== undefined && path.startsWith(rw[0])) path = rw[1] + path.slice(rw[0].length);
  const now = performance.now();
  const previous = ctx.upstreamRequest;
  let body: Readable | null;
  let contentLength: number;
  if (previous === null) {
    ({ body, contentLength } = ctx.requestBody());
    // A stage that may ask for another attempt keeps a body within its limit (retry() checks it was kept).
    const limit = ctx.bodyBufferBytes;
    if (body !== null && limit > 0 && contentLength <= limit) {
      ctx.bodyReplay = new BodyReplay(body, limit);
      body = ctx.bodyReplay.next();
    }
    ctx.upstreamStartMs = now;
    if (ctx.timeoutMs > 0) ctx.deadlineMs = now + ctx.timeoutMs;
  } else {
    contentLength = previous.contentLength;
    body = previous.body === null ? null : ctx.bodyReplay!.next();
  }
  // The request's timeout bounds all its attempts together; a per-try timeout, when shorter, this one.
  let timeoutMs = ctx.deadlineMs === 0 ? 0 : Math.max(1, Math.ceil(ctx.deadlineMs - now));
  const perTry = ctx.perTryTimeoutMs;
  ctx.perTryTimerArmed = perTry > 0 && (timeoutMs === 0 || perTry < timeoutMs);
  if (ctx.perTryTimerArmed) timeoutMs = perTry;
  ctx.attemptNumber++;
  const request: OutboundRequest = {
    method: ctx.method,
    path,
    authority: ctx.authority,
    scheme: 'http',
    headers: ctx.upstreamHeaders(),
    body,
    contentLength,
    timeoutMs,
    http1Fallback: !ctx.isGrpc && ctx.cluster!.protocol === 'auto',
    keptBody: ctx.bodyReplay,
    attempts: 1,
  };
  // Kept for the access log's upstream_attempts (a pool may send the request again below the attempt).
  ctx.upstreamRequest = request;
  const attempt = new Attempt(ctx);
  ctx.attempt = attempt;
  const exchange = upstreamPool(ctx, ep, now).request(request, attempt);
  // The pool may have failed the attempt already (and a retry started another): keep only the live one's.
  if (ctx.attempt === attempt && !attempt.settled) ctx.exchange = exchange;
}

/**
 * The upstream sink of one attempt. Until a response head is accepted the attempt's outcome goes to the
 * result stages, which may ask for another attempt; once accepted (`ctx.committed`) the response streams to
 * the downstream (the context's respond/write/end/fail). A superseded attempt's pool has been aborted, so
 * nothing more arrives from it; the guard only makes that certain.
 */
class Attempt implements ResponseSink {
  private readonly ctx: RequestContext;
  /** It ended, failed or was replaced (possibly before its pool returned its exchange). */
  settled = false;

  constructor(ctx: RequestContext) {
    this.ctx = ctx;
  }

  onResponse(status: number, headers: FlatHeaders, endStream: boolean): void {
    const ctx = this.ctx;
    if (ctx.attempt !== this) return;
    const stages = ctx.listener.chain.result;
    if (stages.length !== 0 && verdict(ctx, stages, status, headers, null) === 'retry' && retry(ctx, this, status, ''))
      return;
    ctx.committed = true;
    // The last of the attempts a retry policy allowed: the answer goes out as it is, flagged.
    if (ctx.flag === FLAG.RetryLimit) headers.push(FLAG_HEADER, FLAG.RetryLimit);
    ctx.respond(status, headers, endStream);
  }

  onData(chunk: Buffer): boolean {
    const ctx = this.ctx;
    return ctx.attempt === this ? ctx.write(chunk) : true;
  }

  onEnd(trailers: FlatHeaders | null, last: Buffer | null): void {
    const ctx = this.ctx;
    if (ctx.attempt !== this) return;
    this.settled = true;
    ctx.exchange = null;
    ctx.end(trailers, last);
  }

  onError(err: UpstreamError): void {
    const ctx = this.ctx;
    if (ctx.attempt !== this) return;
    this.settled = true;
    ctx.exchange = null;
    const stages = ctx.listener.chain.result;
    if (
      stages.length !== 0 &&
      !ctx.committed &&
      err.source !== 'forward' &&
      verdict(ctx, stages, 0, null, err) === 'retry' &&
      retry(ctx, this, 0, err.flag)
    )
      return;
    ctx.fail(err);
  }
}

function verdict(
  ctx: RequestContext,
  stages: readonly Stage[],
  status: number,
  headers: FlatHeaders | null,
  error: UpstreamError | null,
): ResultVerdict {
  // Every result stage sees every attempt (an outlier detector must, whatever a retry stage decides).
  const result: UpstreamResult = { status, headers, error };
  let v: ResultVerdict = 'accept';
  for (let i = 0; i < stages.length; i++) if (stages[i].onUpstreamResult!(ctx, result) === 'retry') v = 'retry';
  return v;
}

/**
 * Whether another attempt can still be made: nothing went downstream yet, and the request has no body or its
 * body was kept whole (ctx.bodyBufferBytes; a body over that limit went out as a stream). A result stage asks
 * this before it asks for a retry.
 */
export function canAttemptAgain(ctx: RequestContext): boolean {
  if (ctx.committed || ctx.finished) return false;
  const req = ctx.upstreamRequest;
  return req === null || req.body === null || (ctx.bodyReplay !== null && ctx.bodyReplay.replayable);
}

/**
 * Another attempt, if one can still be made (canAttemptAgain). The per-attempt stages run again (a new endpoint
 * pick), then the request goes out again. False: the outcome stands.
 */
function retry(ctx: RequestContext, failed: Attempt, status: number, flag: string): boolean {
  if (!canAttemptAgain(ctx)) return false;
  failed.settled = true;
  const ex: Exchange | null = ctx.exchange;
  ctx.exchange = null;
  ctx.attempt = null;
  ex?.abort();
  ctx.bodyReplay?.hold();
  ctx.earlierAttempts += ctx.upstreamRequest?.attempts ?? 0;
  if (ctx.trace !== null) ctx.tracer!.retry?.(ctx.trace, { status, flag });
  // Deferred: the failed attempt's pool is still inside its callback; the next attempt starts clean.
  queueMicrotask(() => {
    if (ctx.finished) return;
    try {
      runStages(ctx, ctx.listener.chain.attempt, 0, forward);
    } catch (err) {
      ctx.onException(err, FLAG.InternalError);
    }
  });
  return true;
}
