// The mesh's own request fields (x-forwarded-*, x-request-id, x-source/target-service, grpc-timeout, the
// attempt count, trace context, a route's set fields), written from a request's context after its fields were copied (headers.ts holds
// the tables that copying uses; it stays free of the request context so the upstream pools can share it).
import type { RequestContext } from './context.ts';
import { ATTEMPT_COUNT_HEADER } from './headers.ts';
import type { FlatHeaders } from './upstream/types.ts';

/** x-skein-attempt-count's values, made once (maxRetries is at most 10). */
const ATTEMPT_COUNTS: readonly string[] = Array.from({ length: 16 }, (_, i) => String(i));

/** Fields gathered while copying, then written by pushMeshHeaders. */
export interface GatheredHeaders {
  xff: string | undefined;
  xfp: string | undefined;
  requestId: string | undefined;
  source: string | undefined;
}

export function pushMeshHeaders(ctx: RequestContext, out: FlatHeaders, g: GatheredHeaders, scheme: string): void {
  const l = ctx.listener;
  out.push('x-forwarded-for', g.xff === undefined ? ctx.remoteAddress : `${g.xff}, ${ctx.remoteAddress}`);
  out.push('x-forwarded-proto', g.xfp ?? scheme);
  out.push('x-request-id', ctx.ensureRequestId(g.requestId));
  // Outbound: this proxy vouches for its local service. Inbound: keep what the calling proxy said.
  const source = l.outbound ? l.serviceName : (g.source ?? 'unknown');
  out.push('x-source-service', source);
  out.push('x-target-service', ctx.cluster!.service);
  // gRPC: tell the upstream the deadline this proxy enforces (the client's, or a shorter route timeout), less
  // the time already spent here, so the server stops working when the proxy would give up anyway.
  if (ctx.isGrpc && ctx.timeoutMs > 0) {
    out.push('grpc-timeout', `${Math.max(1, Math.ceil(ctx.timeoutMs - (performance.now() - ctx.startMs)))}m`);
  }
  if (ctx.retryPolicy !== null && ctx.attemptNumber > 0) {
    const n = ctx.attemptNumber;
    out.push(ATTEMPT_COUNT_HEADER, ATTEMPT_COUNTS[n] ?? String(n));
  }
  if (ctx.trace !== null) ctx.tracer!.inject(ctx.trace, ctx, out);
  const set = ctx.route!.setHeaders;
  for (let i = 0; i < set.length; i++) out.push(set[i][0], set[i][1]);
}

/** Names the route sets or removes: copying skips them. Empty set on most routes, so one size check. */
export function routeOverrides(ctx: RequestContext, lower: string): boolean {
  const route = ctx.route!;
  if (route.removeHeaders.size !== 0 && route.removeHeaders.has(lower)) return true;
  const set = route.setHeaders;
  for (let i = 0; i < set.length; i++) if (set[i][0] === lower) return true;
  return false;
}
