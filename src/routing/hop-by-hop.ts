// The header fields that describe one connection and are never forwarded in either direction. Pure data, in
// the shared core because both sides need it: the proxy drops these fields (proxy/headers.ts) and the config
// schema refuses a route that would set one (a route's `requestHeaders.set` is written as is).

/**
 * HTTP/1.1's hop-by-hop fields (RFC 9110 §7.6.1) and every field HTTP/2 forbids (RFC 9113 §8.2.2; node:http2
 * throws on them, so one that slipped through from an HTTP/1.1 peer would fail the request). So are the fields
 * a Connection field names. Exceptions: `te: trailers` to an HTTP/2 upstream (gRPC needs it), and
 * Upgrade/Connection on a WebSocket upgrade (websocket.ts writes its own).
 */
export const HOP_BY_HOP: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'http2-settings',
];

/** Fields a route may not set, and why: the connection's own, and the framing and target the proxy writes. */
export function reasonRouteCannotSet(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (HOP_BY_HOP.includes(lower)) return `${name} describes one connection: the proxy never forwards it`;
  if (lower === 'content-length' || lower === 'host' || lower === 'expect')
    return `${name} is written by the proxy from the request itself`;
  if (lower.startsWith(':')) return `${name} is an HTTP/2 pseudo-header`;
  if (lower === 'x-forwarded-client-cert' || lower === 'x-mesh-mtls' || lower === 'x-mesh-cert-fingerprint')
    return `${name} is written by the inbound proxy from the caller's certificate`;
  return undefined;
}
