// The request pipeline: an ordered list of stages built per listener from the Snapshot, then the upstream
// call. A stage sees the request context and either lets the request continue or answers it; it knows
// nothing of the stages beside it. Resilience, identity and rate limiting slot in as stages here.
import type { CompiledListener } from '../src/config/compile.ts';
import { fastRandom } from '../src/lb/fast-random.ts';
import type { Cluster, Endpoint } from './cluster.ts';
import type { RequestContext } from './context.ts';
import { FLAG, type LocalReply, localReply } from './flags.ts';
import type { EndpointPool, OutboundRequest } from './upstream/types.ts';

export interface Stage {
  readonly name: string;
  /** null: continue with the next stage; a LocalReply: answer now with it. */
  onRequest(ctx: RequestContext): LocalReply | null;
}

/** Picks the route and, within a weighted split, the destination cluster. */
function routeStage(listener: CompiledListener<Cluster>): Stage {
  const table = listener.routes;
  const noRoute = localReply(FLAG.NoRoute);
  return {
    name: 'route',
    onRequest(ctx) {
      const route = table.match(ctx);
      if (route === undefined) return noRoute;
      ctx.route = route;
      const cluster = route.clusters.length === 1 ? route.clusters[0] : route.pickCluster(fastRandom());
      ctx.cluster = cluster;
      const timeout = route.timeoutMs ?? cluster.requestTimeoutMs;
      // A gRPC deadline shorter than the route timeout wins (set by the protocol handler beforehand).
      if (ctx.timeoutMs === 0 || (timeout > 0 && timeout < ctx.timeoutMs)) ctx.timeoutMs = timeout;
      return null;
    },
  };
}

/** The load balancer's pick among the cluster's endpoints. */
const lbPickStage: Stage = {
  name: 'lb-pick',
  onRequest(ctx) {
    const ep = ctx.cluster!.pick(ctx);
    if (ep === undefined) return localReply(FLAG.NoHealthyUpstream);
    ctx.endpoint = ep;
    ep.active++;
    ep.requestsTotal++;
    return null;
  },
};

/**
 * Stage order per direction (ARCHITECTURE.md). Built today: route and LB pick. Where the rest go:
 * inbound  — identity → authorization → rate limit → route → fault → lb-pick
 * outbound — route → fault → rate limit → retry/timeout → breaker → lb-pick
 */
export function buildStages(listener: CompiledListener<Cluster>): Stage[] {
  return [routeStage(listener), lbPickStage];
}

/**
 * Runs the stages, then the upstream call. Synchronous today; an async stage would return a promise here.
 * The exception boundary of the request path starts here: whatever a stage, the header conversion or the
 * pool throws ends this request with 500 IE (ctx.onException), never the connection's other requests or the
 * process. The pools guard their own calls into the context (the upstream's answer) the same way.
 */
export function handleRequest(stages: readonly Stage[], ctx: RequestContext): void {
  try {
    const telemetry = ctx.listener.telemetry;
    if (telemetry.tracer !== null) {
      ctx.tracer = telemetry.tracer;
      ctx.trace = telemetry.startTrace(ctx, (name) => ctx.header(name));
    }
    for (let i = 0; i < stages.length; i++) {
      const reply = stages[i].onRequest(ctx);
      if (reply !== null) {
        ctx.replyLocal(reply.status, reply.flag, reply.message, reply.grpcStatus);
        return;
      }
    }
    forward(ctx);
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

export interface RequestBody {
  body: OutboundRequest['body'];
  contentLength: number;
}

function forward(ctx: RequestContext): void {
  const ep = ctx.endpoint!;
  const route = ctx.route!;
  let path = ctx.url;
  const rw = route.rewrite;
  if (rw !== undefined && path.startsWith(rw[0])) path = rw[1] + path.slice(rw[0].length);
  const { body, contentLength } = ctx.requestBody();
  const now = performance.now();
  ctx.upstreamStartMs = now;
  const request: OutboundRequest = {
    method: ctx.method,
    path,
    authority: ctx.authority,
    scheme: 'http',
    headers: ctx.upstreamHeaders(),
    body,
    contentLength,
    timeoutMs: ctx.timeoutMs,
    http1Fallback: !ctx.isGrpc && ctx.cluster!.protocol === 'auto',
    attempts: 1,
  };
  // Kept for the access log's upstream_attempts (a pool may send the request again below the sink).
  ctx.upstreamRequest = request;
  ctx.exchange = upstreamPool(ctx, ep, now).request(request, ctx);
}
