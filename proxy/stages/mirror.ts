// The mirror stage: a route's `mirror` copies a share of its requests to a shadow cluster, fire and forget, as
// Envoy's request mirror policy does. The copy goes out once the real request has (a microtask after this
// stage, the last of the chain: the runner's forward() runs synchronously after it), with the same method, path,
// headers and body, its Host/authority suffixed "-shadow". Its answer is read and dropped; its failure or
// slowness never touches the real request, which holds nothing of it. A body is copied only when it is kept
// whole (the runner's BodyReplay, up to the retry policy's bufferLimitBytes, or MIRROR_BODY_LIMIT_BYTES on a
// route that does not retry), and the copy waits for its last byte. Left out on listeners whose routes mirror
// nothing; a request on a route without a mirror costs one field read.
import { Readable } from 'node:stream';
import { DEFAULT_BUFFER_LIMIT_BYTES } from '../../src/config/retry-schema.ts';
import { fastRandom } from '../../src/lb/fast-random.ts';
import { NOT_A_PROBE, type Outcome } from '../../src/resilience/breaker.ts';
import type { MirrorCounts, MirrorOutcome } from '../../src/telemetry/metrics-mirror.ts';
import type { Cluster, Endpoint, HashKeySource } from '../cluster.ts';
import type { RequestContext } from '../context.ts';
import type { UpstreamError } from '../flags.ts';
import type { Stage } from '../pipeline.ts';
import type { EndpointPool, FlatHeaders, KeptBody, OutboundRequest, ResponseSink } from '../upstream/types.ts';
import type { StageDefinition } from './types.ts';

/** Body bytes kept for the copy on a route without a retry policy (which would set its own limit). */
export const MIRROR_BODY_LIMIT_BYTES = DEFAULT_BUFFER_LIMIT_BYTES;

/** "api:8080" → "api-shadow:8080", "api" → "api-shadow" (Envoy's shadow host: the suffix goes before the port). */
export function shadowAuthority(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close && colon > 0) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/** The copy's body: the kept chunks, again from the first byte for each send (a pool's transparent re-send). */
class CopiedBody implements KeptBody {
  readonly replayable = true;
  private readonly chunks: readonly Buffer[];

  constructor(chunks: readonly Buffer[]) {
    this.chunks = chunks;
  }

  next(): Readable {
    const body = new Readable({ read() {} });
    for (const chunk of this.chunks) body.push(chunk);
    body.push(null);
    return body;
  }
}

/** The LB pick's view of the request for the copy: its hash key, but the copy's own breaker probe token. */
class CopyPick implements HashKeySource {
  private readonly ctx: RequestContext;
  breakerProbe = NOT_A_PROBE;

  constructor(ctx: RequestContext) {
    this.ctx = ctx;
  }
  header(name: string): string | undefined {
    return this.ctx.header(name);
  }
  get remoteAddress(): string {
    return this.ctx.remoteAddress;
  }
}

/** Receives the shadow's answer and drops it; gives back what the copy held, once, and counts its outcome. */
class CopySink implements ResponseSink {
  private readonly cluster: Cluster;
  private readonly ep: Endpoint;
  private readonly probe: number;
  private readonly counts: MirrorCounts;
  /** The head said 5xx: the endpoint's breaker hears a failure once the answer ends. */
  private serverFailed = false;
  private done = false;

  constructor(cluster: Cluster, ep: Endpoint, probe: number, counts: MirrorCounts) {
    this.cluster = cluster;
    this.ep = ep;
    this.probe = probe;
    this.counts = counts;
  }

  onResponse(status: number, _headers: FlatHeaders, endStream: boolean): void {
    if (endStream) this.finish('answered', status >= 500 ? 'failure' : 'success');
    else if (status >= 500) this.serverFailed = true;
  }
  onData(): boolean {
    return true;
  }
  onEnd(): void {
    this.finish('answered', this.serverFailed ? 'failure' : 'success');
  }
  onError(_err: UpstreamError): void {
    this.finish('failed', 'failure');
  }

  private finish(outcome: MirrorOutcome, breakerOutcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    const ep = this.ep;
    ep.active--;
    if (breakerOutcome === 'failure') ep.failuresTotal++;
    if (ep.breaker !== null) ep.breaker.record(performance.now(), breakerOutcome, this.probe);
    this.cluster.limits.endRequest();
    this.counts[outcome]++;
  }
}

/** The pool for the copy: the shadow cluster's protocol, chosen as the runner chooses for the real request. */
function copyPool(ctx: RequestContext, cluster: Cluster, ep: Endpoint): EndpointPool {
  const p = cluster.protocol;
  if (p === 'http1' || (p === 'auto' && ctx.protocol !== 'HTTP/2')) return ep.pool('http1');
  if (p === 'http2' || ctx.isGrpc || ep.speaksHttp2(performance.now())) return ep.pool('http2');
  return ep.pool('http1');
}

/** Sends the copy of what the real request sent (`sent`), with `body` when it has one. */
function sendCopy(
  ctx: RequestContext,
  cluster: Cluster,
  sent: OutboundRequest,
  body: readonly Buffer[] | null,
  counts: MirrorCounts,
): void {
  if (!cluster.limits.tryStartRequest()) {
    counts.overflow++;
    return;
  }
  const pick = new CopyPick(ctx);
  const ep = cluster.pick(pick);
  if (ep === undefined) {
    cluster.limits.endRequest();
    counts.no_healthy_upstream++;
    return;
  }
  ep.active++;
  ep.requestsTotal++;
  const headers = sent.headers.slice();
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'x-target-service') headers[i + 1] = cluster.service;
  let contentLength = 0;
  let kept: CopiedBody | null = null;
  if (body !== null) {
    for (const chunk of body) contentLength += chunk.length;
    kept = new CopiedBody(body);
  }
  const copy: OutboundRequest = {
    method: sent.method,
    path: sent.path,
    authority: shadowAuthority(sent.authority),
    scheme: sent.scheme,
    headers,
    body: kept === null ? null : kept.next(),
    contentLength,
    timeoutMs: cluster.requestTimeoutMs,
    http1Fallback: !ctx.isGrpc && cluster.protocol === 'auto',
    keptBody: kept,
    attempts: 1,
  };
  copyPool(ctx, cluster, ep).request(copy, new CopySink(cluster, ep, pick.breakerProbe, counts));
}

/** The copy's trouble is never the request's: a throw is logged and counted as a failed copy. */
function guarded(ctx: RequestContext, counts: MirrorCounts, run: () => void): void {
  try {
    run();
  } catch (err) {
    counts.failed++;
    ctx.listener.log.error('mirror copy failed', {
      listener: ctx.listener.name,
      requestId: ctx.requestId,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** After the real request went out: copy it now (no body), once its body is whole (kept), or not at all. */
function mirror(ctx: RequestContext, cluster: Cluster, counts: MirrorCounts): void {
  const sent = ctx.upstreamRequest;
  if (sent === null) return; // it never went upstream (a tunnel, or it failed before)
  const send = (body: readonly Buffer[] | null) =>
    guarded(ctx, counts, () => sendCopy(ctx, cluster, sent, body, counts));
  if (sent.body === null) return send(null);
  const replay = ctx.bodyReplay;
  if (replay === null) {
    counts.body_not_kept++;
    return;
  }
  replay.whenComplete((kept) => {
    if (kept === null) counts.body_not_kept++;
    else send(kept);
  });
}

export const mirrorStage: StageDefinition = {
  name: 'mirror',
  protocols: ['http'],
  create({ listener }): Stage | null {
    const routes = listener.routes.routes;
    if (routes.every((r) => r.mirror === undefined)) return null;
    const listenerName = listener.config.name;
    // Each mirrored route's counts, by CompiledRoute.index, fetched from the stats on the route's first copy.
    const counts: (MirrorCounts | undefined)[] = [];
    return {
      name: 'mirror',
      onRequest(ctx) {
        const route = ctx.route!;
        const m = route.mirror;
        if (m === undefined) return null;
        if (m.percentage < 100 && fastRandom() * 100 >= m.percentage) return null;
        // A WebSocket or other upgrade is a tunnel, not a request to copy.
        if (ctx.header('upgrade') !== undefined) return null;
        const c = (counts[route.index] ??= ctx.listener.stats.mirrorCounts(listenerName, route.name, m.cluster.name));
        // The kept body the copy is sent from: a retry policy keeps it up to its own limit (0: not at all).
        if (ctx.retryPolicy === null && ctx.bodyBufferBytes < MIRROR_BODY_LIMIT_BYTES)
          ctx.bodyBufferBytes = MIRROR_BODY_LIMIT_BYTES;
        queueMicrotask(() => guarded(ctx, c, () => mirror(ctx, m.cluster, c)));
        return null;
      },
    };
  },
};
