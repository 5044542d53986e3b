// The mesh's own request fields (x-forwarded-*, x-request-id, x-source/target-service, grpc-timeout, the
// attempt count, trace context, the caller's certificate on inbound requests, a route's set fields), written
// from a request's context after its fields were copied (headers.ts holds the tables that copying uses; it
// stays free of the request context so the upstream pools can share it).
import type { RequestContext } from './context.ts';
import { ATTEMPT_COUNT_HEADER, MESH_FINGERPRINT_HEADER, MESH_MTLS_HEADER, XFCC_HEADER } from './headers.ts';
import type { MeshIdentity } from './mtls/identity.ts';
import type { PeerIdentity } from './peer.ts';
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
  // Inbound: the app learns who called from the proxy alone (the caller's own values were dropped while copying).
  if (!l.outbound) {
    const peer = ctx.peer;
    if (peer === null) out.push(MESH_MTLS_HEADER, 'false');
    else {
      out.push(MESH_MTLS_HEADER, 'true');
      out.push(MESH_FINGERPRINT_HEADER, peer.certSha256);
      out.push(XFCC_HEADER, forwardedClientCert(l.identity, peer));
    }
  }
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

/** x-forwarded-client-cert values by connection peer, with the local id they were made with. */
const xfccByPeer = new WeakMap<PeerIdentity, { readonly by: string; readonly value: string }>();

/**
 * Envoy's x-forwarded-client-cert for a verified peer: `By=<this proxy's SPIFFE id>;Hash=<the peer certificate's
 * SHA-256>;URI=<the peer's SPIFFE id>`; By is left out while this proxy has no id (no `mtls`, or no certificate
 * yet), URI when the certificate carries none. Made once per connection (and again after this proxy's id changed).
 */
export function forwardedClientCert(identity: MeshIdentity | null, peer: PeerIdentity): string {
  const by = identity === null ? '' : identity.id;
  const held = xfccByPeer.get(peer);
  if (held !== undefined && held.by === by) return held.value;
  const uri = peer.spiffeId === '' ? '' : `;URI=${peer.spiffeId}`;
  const value = `${by === '' ? '' : `By=${by};`}Hash=${peer.certSha256}${uri}`;
  xfccByPeer.set(peer, { by, value });
  return value;
}
