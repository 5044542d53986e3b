// How request headers cross the proxy: hop-by-hop fields dropped, the mesh's own fields set (x-request-id,
// x-forwarded-for/-proto, x-source-service, x-target-service) and the route's header edits applied.
// The name → action table is built once; per header the hot path does one lowercase and one map lookup.
import { propagationHeaderNames } from '../src/telemetry/trace-context.ts';
import type { RequestContext } from './context.ts';
import type { FlatHeaders } from './upstream/types.ts';

export const H_DROP = 1;
export const H_HOST = 2;
export const H_XFF = 3;
export const H_XFP = 4;
export const H_REQUEST_ID = 5;
export const H_CONTENT_LENGTH = 6;
export const H_TRANSFER_ENCODING = 7;
export const H_CONNECTION = 8;
export const H_TE = 9;
export const H_SOURCE = 10;
export const H_TARGET = 11;
export const H_GRPC_TIMEOUT = 12;
export const H_TRACE = 13;

/** Request header name (lowercase) → what to do with it instead of copying it as is. */
export const REQUEST_HEADER_ACTIONS: ReadonlyMap<string, number> = new Map([
  ['host', H_HOST],
  ['connection', H_CONNECTION],
  ['keep-alive', H_DROP],
  ['proxy-connection', H_DROP],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['te', H_TE],
  ['trailer', H_DROP],
  ['upgrade', H_DROP],
  ['expect', H_DROP], // the downstream server already answered 100-continue
  ['content-length', H_CONTENT_LENGTH],
  ['x-forwarded-for', H_XFF],
  ['x-forwarded-proto', H_XFP],
  ['x-request-id', H_REQUEST_ID],
  ['x-source-service', H_SOURCE],
  ['x-target-service', H_TARGET],
  ['grpc-timeout', H_GRPC_TIMEOUT],
  // Trace propagation, every format a tracer may be configured with: copied as is unless the request is traced
  // (then the tracer writes its own).
  ...[...propagationHeaderNames(['w3c', 'b3', 'b3multi'])].map((n) => [n, H_TRACE] as const),
]);

/** Lengths of the names above: HTTP/1.1 copies a field of any other length without lowercasing its name
 *  (unless the route edits headers), which is most of a typical request's fields. */
export const ACTION_NAME_LENGTHS: ReadonlySet<number> = new Set(
  [...REQUEST_HEADER_ACTIONS.keys()].map((k) => k.length),
);

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
