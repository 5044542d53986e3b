// The per-request context every pipeline stage sees: what was asked (method, path, headers), what was
// decided (route, cluster, endpoint) and how it ended (status, flag). One object per request; protocol
// handlers (http1.ts, http2.ts, tcp.ts) extend it with their wire details and write the response downstream
// (respond/write/end/fail), which the runner's attempts call once a result is accepted (pipeline.ts).
import type { CompiledRoute, RoutableRequest } from '../src/routing/match.ts';
import type { RequestRecord, RequestTracer, TraceState } from '../src/telemetry/types.ts';
import type { Cluster, Endpoint, HashKeySource } from './cluster.ts';
import type { CompiledRetryPolicy } from '../src/resilience/retry.ts';
import type { BodyReplay } from './body-replay.ts';
import { errorMessage, localReply, type RequestFlag, type UpstreamError } from './flags.ts';
import type { ListenerScope } from './scope.ts';
import { nextRequestId } from './request-id.ts';
import type { PeerIdentity } from './peer.ts';
import type { OriginalDst } from './original-dst.ts';
import type { Exchange, FlatHeaders, OutboundRequest, ResponseSink } from './upstream/types.ts';

export abstract class RequestContext implements RoutableRequest, HashKeySource, RequestRecord {
  /** The listener as it was compiled when this request started (a reload does not change it). */
  readonly listener: ListenerScope;
  readonly startMs: number;
  method = '';
  /** Path without query. */
  path = '';
  /** Path and query as received. */
  url = '';
  /** The Cookie header and the query as maps, parsed by route conditions that read them (src/routing/match.ts,
   *  at most once per request); null until one does. */
  parsedCookies: ReadonlyMap<string, string> | null = null;
  parsedQuery: ReadonlyMap<string, string> | null = null;
  authority = '';
  /** The downstream connection's scheme: https under a TLS listener (x-forwarded-proto). */
  scheme = 'http';
  isGrpc = false;
  remoteAddress = '';
  /** The downstream connection's verified mTLS peer (peer.ts); null on a plaintext or one-way TLS connection. */
  peer: PeerIdentity | null = null;
  /** Where the client was going before `skein redirect` sent it here (original-dst.ts); null unless the listener
   *  has `originalDst: true` and the connection was redirected. */
  originalDst: OriginalDst | null = null;
  requestId = '';
  route: CompiledRoute<Cluster> | undefined = undefined;
  cluster: Cluster | undefined = undefined;
  endpoint: Endpoint | undefined = undefined;
  /** The live attempt's exchange with the upstream; null when none is in flight. */
  exchange: Exchange | null = null;
  /** The live attempt's sink (pipeline.ts); a replaced attempt is no longer it. */
  attempt: ResponseSink | null = null;
  /** A response head was accepted and handed downstream: no other attempt can be made. */
  committed = false;
  /** What was sent upstream by the latest attempt; its `attempts` count the pool's transparent re-sends. */
  upstreamRequest: OutboundRequest | null = null;
  /** Upstream attempts made by the attempts before the latest (the runner's retries). */
  earlierAttempts = 0;
  /** The runner's attempts so far (1 while the first is in flight); a pool's transparent re-send is not one. */
  attemptNumber = 0;
  /** Request body bytes the runner keeps so another attempt can send them again (a retry policy sets it);
   *  0: none kept, and a request whose body went out is not attempted again. */
  bodyBufferBytes = 0;
  /** The kept body (body-replay.ts), when the request has one within bodyBufferBytes. */
  bodyReplay: BodyReplay | null = null;
  /** When the request's timeout ends all its attempts (performance.now() ms); 0 = none. Set at the first. */
  deadlineMs = 0;
  /** Each attempt's own timeout within the request's (the retry policy's perTryTimeoutMs); 0 = none. */
  perTryTimeoutMs = 0;
  /** The attempt in flight has the per-try timeout as its deadline (shorter than what was left of the
   *  request's): a UT then fails that attempt, not the request. */
  perTryTimerArmed = false;
  /** The retry stage's policy for this request (stages/retry.ts); null when it does not retry. */
  retryPolicy: CompiledRetryPolicy | null = null;
  /** The retry stage holds one of the cluster's maxRetries slots for the retry in flight. */
  holdsRetrySlot = false;
  /** Endpoints earlier attempts went to (lb-pick adds each on a further attempt): the pick avoids them. */
  triedEndpoints: Endpoint[] | null = null;
  /** The breaker stage's marks (stages/breaker.ts): it holds a request slot of the cluster, an attempt's
   *  outcome is still to be reported to its endpoint's breaker. */
  breakerMarks = 0;
  /** The pick's probe token when the picked endpoint's breaker is half-open (Cluster.pick), else -1. */
  breakerProbe = -1;
  /** Seconds a local reply tells the client to wait (Retry-After; the rate-limit stage sets it); 0 = none. */
  retryAfterSec = 0;
  status = 0;
  flag: RequestFlag | '' = '';
  /** 0 = none; set by the route/cluster and narrowed by grpc-timeout. */
  timeoutMs = 0;
  finished = false;
  // Telemetry (RequestRecord): times are performance.now() ms, 0 = did not happen.
  endMs = 0;
  upstreamStartMs = 0;
  upstreamHeadersMs = 0;
  grpcStatus = -1;
  requestBytes = 0;
  responseBytes = 0;
  /** Set when the request is traced, with the tracer that started it (a reload may replace the tracer). */
  trace: TraceState | null = null;
  tracer: RequestTracer | null = null;

  constructor(listener: ListenerScope) {
    this.listener = listener;
    this.startMs = performance.now();
    listener.stats.inFlight++;
  }

  abstract readonly protocol: 'HTTP/1.1' | 'HTTP/2' | 'TCP';
  abstract header(name: string): string | undefined;
  /** Request headers to send upstream: the downstream ones minus hop-by-hop, plus the mesh's own. */
  abstract upstreamHeaders(): FlatHeaders;
  /** The request body to stream upstream (null when there is none) and its length (-1: unknown). */
  abstract requestBody(): { body: import('node:stream').Readable | null; contentLength: number };
  /** Send a response generated by the proxy (errors, no route). */
  abstract replyLocal(status: number, flag: RequestFlag, message: string, grpcStatus: number): void;
  // The downstream response, written from the accepted attempt (the ResponseSink contract, one level up).
  /** The response head; `endStream`: no body or trailers follow. */
  abstract respond(status: number, headers: FlatHeaders, endStream: boolean): void;
  /** A body chunk; false asks the upstream to pause until ctx.exchange.resume(). */
  abstract write(chunk: Buffer): boolean;
  /** The end of the response, with trailers and the last body chunk when the pool held one back. */
  abstract end(trailers: FlatHeaders | null, last: Buffer | null): void;
  /** The accepted attempt failed, or the last attempt did and no other is made: reply or cut. */
  abstract fail(err: UpstreamError): void;

  /** Cut this request's downstream at once: reset its HTTP/2 stream, close its HTTP/1.1 connection. */
  abstract abortDownstream(): void;

  /**
   * The exception boundary's landing (ARCHITECTURE.md: nothing may throw past the runner): `err` was thrown
   * while handling this request, by a stage or the upstream call (flag IE, 500) or while forwarding the
   * upstream's answer (UPE, 502). This request alone ends: with that local reply when nothing went downstream
   * yet, else with its stream reset or its connection closed; it is counted under its flag and logged with
   * its id. Never throws.
   */
  onException(err: unknown, flag: 'UPE' | 'IE'): void {
    const ex = this.exchange;
    this.exchange = null;
    const log = this.listener.log;
    try {
      ex?.abort();
      const requestId = this.requestId || this.ensureRequestId(this.header('x-request-id'));
      log.error('request failed', {
        listener: this.listener.name,
        requestId,
        flag,
        error: errorMessage(err),
        stack: err instanceof Error ? err.stack : undefined,
      });
      if (this.finished) {
        // It threw after its response was complete (or while finishing): the connection's state is unknown.
        this.abortDownstream();
        return;
      }
      const reply = localReply(flag);
      this.replyLocal(reply.status, flag, reply.message, reply.grpcStatus);
    } catch (again) {
      log.error('local reply failed; cutting the connection', {
        requestId: this.requestId,
        error: errorMessage(again),
      });
      try {
        this.abortDownstream();
        this.finish(flag === 'UPE' ? 502 : 500, flag);
      } catch (last) {
        log.error('request cleanup failed', { requestId: this.requestId, error: errorMessage(last) });
      }
    }
  }

  /** The query string without '?' ('' when none); worked out when asked (only query conditions ask). */
  get query(): string {
    const url = this.url;
    const q = url.indexOf('?');
    return q < 0 ? '' : url.slice(q + 1);
  }

  get listenerName(): string {
    return this.listener.name;
  }
  get direction(): 'inbound' | 'outbound' {
    return this.listener.outbound ? 'outbound' : 'inbound';
  }
  get userAgent(): string {
    return this.header('user-agent') ?? '';
  }
  get upstreamHost(): string {
    return this.endpoint?.id ?? '';
  }
  get clusterName(): string {
    return this.cluster?.name ?? '';
  }
  get routeName(): string {
    return this.route?.name ?? '';
  }
  /** Outbound: this proxy's own service. Inbound: what the calling proxy said (its x-source-service). */
  get sourceService(): string {
    return this.listener.outbound ? this.listener.serviceName : (this.header('x-source-service') ?? 'unknown');
  }
  /** Outbound: the picked cluster's service. Inbound: the local app's cluster's `service` when the config names
   *  one, else the service this proxy fronts. */
  get destinationService(): string {
    if (this.listener.outbound) return this.cluster?.service ?? '';
    return this.cluster?.config.service ?? this.listener.serviceName;
  }
  get destinationVersion(): string {
    return this.endpoint?.labels.version ?? '';
  }
  /** Attempts made upstream: 0 when none was, more than 1 after a retry or a transparent re-send. */
  get upstreamAttempts(): number {
    return this.upstreamRequest === null ? 0 : this.earlierAttempts + this.upstreamRequest.attempts;
  }
  get traceId(): string {
    return this.trace?.traceId ?? '';
  }
  get spanId(): string {
    return this.trace?.spanId ?? '';
  }

  /** A propagation header (traceparent, b3…) the tracer replaces on this request, so the copy skips it. */
  protected tracerRewrites(lowercaseName: string): boolean {
    return this.trace !== null && this.tracer!.headerNames.has(lowercaseName);
  }

  /** A response head from the upstream: its time, and a gRPC status when it is a trailers-only response. */
  protected noteUpstreamHead(headers: FlatHeaders, endStream: boolean): void {
    this.upstreamHeadersMs = performance.now();
    if (endStream && this.isGrpc) this.noteGrpcStatus(headers);
  }

  protected noteGrpcStatus(fields: FlatHeaders): void {
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i].length === 11 && fields[i].toLowerCase() === 'grpc-status') {
        const n = Number(fields[i + 1]);
        if (Number.isInteger(n) && n >= 0) this.grpcStatus = n;
        return;
      }
    }
  }

  ensureRequestId(existing: string | undefined): string {
    this.requestId = existing !== undefined && existing !== '' ? existing : nextRequestId();
    return this.requestId;
  }

  /** Once per request, whatever the outcome: the stages' finish phase, then telemetry. */
  finish(status: number, flag: RequestFlag | ''): void {
    if (this.finished) return;
    this.finished = true;
    this.endMs = performance.now();
    const l = this.listener;
    l.stats.inFlight--;
    this.status = status;
    if (flag !== '') this.flag = flag;
    if (l.chain.finish.length !== 0) finishStages(this);
    this.report();
  }

  /** Records the finished request: metrics, the trace's end, the access log. */
  protected report(): void {
    const l = this.listener;
    l.stats.onRequestEnd(l.name, this);
    l.telemetry.onRequestEnd(this, this.trace, this.tracer);
  }
}

/** grpc-timeout ("100m", "5S", "1H"...) → milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined;
  const n = Number(value.slice(0, -1));
  if (!Number.isInteger(n) || n < 0) return undefined;
  switch (value.charCodeAt(value.length - 1)) {
    case 72: // H
      return n * 3_600_000;
    case 77: // M
      return n * 60_000;
    case 83: // S
      return n * 1000;
    case 109: // m
      return n;
    case 117: // u
      return Math.ceil(n / 1000);
    case 110: // n
      return Math.ceil(n / 1_000_000);
    default:
      return undefined;
  }
}

/**
 * Runs the finish phase: every stage that asked, in chain order; a throw there is logged, never rethrown. Here
 * rather than in pipeline.ts, which depends on this module, so the two do not import each other.
 */
function finishStages(ctx: RequestContext): void {
  const stages = ctx.listener.chain.finish;
  for (let i = 0; i < stages.length; i++) {
    try {
      stages[i].onFinish!(ctx);
    } catch (err) {
      ctx.listener.log.error('stage onFinish failed', {
        listener: ctx.listener.name,
        stage: stages[i].name,
        requestId: ctx.requestId,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
