// How headers cross the proxy: hop-by-hop fields dropped in both directions (one list, src/routing/hop-by-hop.ts), the mesh's own
// request fields set (x-request-id, x-forwarded-for/-proto, x-source-service, x-target-service) and the route's
// header edits applied. The tables are built once; per header the hot path does one lowercase and one lookup.
import { HOP_BY_HOP } from '../src/routing/hop-by-hop.ts';
import { propagationHeaderNames } from '../src/telemetry/trace-context.ts';
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
export const H_ATTEMPT_COUNT = 14;
/** What the inbound proxy tells the app about the caller's certificate: never copied from the request. */
export const H_PEER_CERT = 15;

/** The caller's certificate as the inbound proxy saw it (Envoy's XFCC: By, Hash, URI), set on inbound requests. */
export const XFCC_HEADER = 'x-forwarded-client-cert';
/** `true` when the request came over a verified mTLS connection, else `false` (inbound requests). */
export const MESH_MTLS_HEADER = 'x-mesh-mtls';
/** The SHA-256 (lowercase hex) of the caller's certificate (inbound requests over mTLS). */
export const MESH_FINGERPRINT_HEADER = 'x-mesh-cert-fingerprint';

/** The upstream attempt's number (1 on the first try), sent when a retry policy applies (Envoy's
 *  x-envoy-attempt-count): the app can tell a retry from a new request. */
export const ATTEMPT_COUNT_HEADER = 'x-skein-attempt-count';

export { HOP_BY_HOP } from '../src/routing/hop-by-hop.ts';

/** Request header name (lowercase) → what to do with it instead of copying it as is. */
export const REQUEST_HEADER_ACTIONS: ReadonlyMap<string, number> = new Map<string, number>([
  ...HOP_BY_HOP.map((n) => [n, H_DROP] as const),
  // Hop-by-hop too, but read on the way: the fields Connection names, the body's framing, gRPC's TE.
  ['connection', H_CONNECTION],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['te', H_TE],
  ['host', H_HOST],
  ['expect', H_DROP], // the downstream server already answered 100-continue
  ['content-length', H_CONTENT_LENGTH],
  ['x-forwarded-for', H_XFF],
  ['x-forwarded-proto', H_XFP],
  ['x-request-id', H_REQUEST_ID],
  ['x-source-service', H_SOURCE],
  ['x-target-service', H_TARGET],
  ['grpc-timeout', H_GRPC_TIMEOUT],
  [ATTEMPT_COUNT_HEADER, H_ATTEMPT_COUNT],
  // A caller must not forge these: dropped on every listener, written by inbound ones (mesh-headers.ts).
  [XFCC_HEADER, H_PEER_CERT],
  [MESH_MTLS_HEADER, H_PEER_CERT],
  [MESH_FINGERPRINT_HEADER, H_PEER_CERT],
  // Trace propagation, every format a tracer may be configured with: copied as is unless the request is traced
  // (then the tracer writes its own).
  ...[...propagationHeaderNames(['w3c', 'b3', 'b3multi'])].map((n) => [n, H_TRACE] as const),
]);

/** Lengths of the names above: HTTP/1.1 copies a field of any other length without lowercasing its name
 *  (unless the route edits headers), which is most of a typical request's fields. */
export const ACTION_NAME_LENGTHS: ReadonlySet<number> = new Set(
  [...REQUEST_HEADER_ACTIONS.keys()].map((k) => k.length),
);

const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);

/** A name's length and lowercased first letter in one number: most fields (content-length is as long as
 *  http2-settings) are kept on this one lookup, without lowercasing their name. */
function nameKey(name: string): number {
  return (name.length << 8) | (name.charCodeAt(0) | 0x20);
}
const HOP_BY_HOP_KEYS: ReadonlySet<number> = new Set(HOP_BY_HOP.map(nameKey));

/**
 * A response's (or trailer section's) fields without the hop-by-hop ones and those its Connection fields name;
 * the same array when there are none (nearly every response: one lookup per field, no copy).
 */
export function stripHopByHop(h: string[]): FlatHeaders {
  let named: string[] | null = null;
  let clean = true;
  for (let i = 0; i < h.length; i += 2) {
    if (!HOP_BY_HOP_KEYS.has(nameKey(h[i]))) continue;
    const k = h[i].toLowerCase();
    if (HOP_BY_HOP_SET.has(k)) {
      clean = false;
      if (k === 'connection') {
        // "keep-alive" / "close" name no other field: skip the split (nearly every upstream response).
        const v = h[i + 1].toLowerCase();
        if (v !== 'keep-alive' && v !== 'close') named = connectionTokens(v, named);
      }
    }
  }
  if (clean) return h;
  const out: FlatHeaders = [];
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i];
    if (HOP_BY_HOP_KEYS.has(nameKey(n)) && HOP_BY_HOP_SET.has(n.toLowerCase())) continue;
    if (named !== null && named.includes(n.toLowerCase())) continue;
    out.push(n, h[i + 1]);
  }
  return out;
}

/** The field names a (lowercased) Connection value lists, added to those of an earlier Connection field. */
export function connectionTokens(lowercaseValue: string, earlier: string[] | null): string[] {
  const tokens = lowercaseValue.split(',').map((t) => t.trim());
  return earlier === null ? tokens : earlier.concat(tokens);
}
