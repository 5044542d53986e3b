// The hop-by-hop rule (proxy/headers.ts): one list for both directions, plus whatever Connection names.
import { describe, expect, it } from 'vitest';
import { H_DROP, H_PEER_CERT, HOP_BY_HOP, REQUEST_HEADER_ACTIONS, stripHopByHop } from '../../proxy/headers.ts';
import { forwardedClientCert } from '../../proxy/mesh-headers.ts';
import type { MeshIdentity } from '../../proxy/mtls/identity.ts';

describe('stripHopByHop', () => {
  it('drops every connection-specific field, in any case, and the fields each Connection field names', () => {
    const h = [
      'Content-Length', '3',
      'Connection', 'keep-alive, X-Hop',
      'connection', 'x-other',
      'HTTP2-Settings', 'AAMA',
      'Keep-Alive', 'timeout=5',
      'Proxy-Connection', 'keep-alive',
      'Transfer-Encoding', 'chunked',
      'TE', 'gzip',
      'Trailer', 'x-t',
      'Upgrade', 'h2c',
      'x-hop', '1',
      'X-Other', '2',
      'x-kept', 'yes',
    ]; // prettier-ignore
    expect(stripHopByHop(h)).toEqual(['Content-Length', '3', 'x-kept', 'yes']);
  });

  it('returns the same list when there is nothing to drop', () => {
    const h = ['content-length', '3', 'content-type', 'text/plain', 'Connection', 'keep-alive'];
    expect(stripHopByHop(h)).toEqual(['content-length', '3', 'content-type', 'text/plain']);
    const clean = ['content-length', '3', 'content-type', 'text/plain'];
    expect(stripHopByHop(clean)).toBe(clean);
  });
});

describe('request header actions', () => {
  it('never copy a hop-by-hop field as is (HTTP2-Settings included)', () => {
    for (const name of HOP_BY_HOP) expect(REQUEST_HEADER_ACTIONS.get(name), name).toBeDefined();
    expect(REQUEST_HEADER_ACTIONS.get('http2-settings')).toBe(H_DROP);
  });
});

describe('the caller certificate fields', () => {
  it('are never copied from a request, on any listener', () => {
    for (const name of ['x-forwarded-client-cert', 'x-mesh-mtls', 'x-mesh-cert-fingerprint'])
      expect(REQUEST_HEADER_ACTIONS.get(name), name).toBe(H_PEER_CERT);
  });

  it("write Envoy's x-forwarded-client-cert: By (this proxy's id, when it has one), Hash, URI", () => {
    const peer = { spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart', certSha256: 'ab'.repeat(32) };
    const me = { id: 'spiffe://cluster.local/ns/pay/sa/api' } as MeshIdentity;
    const value = forwardedClientCert(me, peer);
    expect(value).toBe(`By=spiffe://cluster.local/ns/pay/sa/api;Hash=${'ab'.repeat(32)};URI=${peer.spiffeId}`);
    expect(forwardedClientCert(me, peer)).toBe(value);
    expect(forwardedClientCert(null, peer)).toBe(`Hash=${'ab'.repeat(32)};URI=${peer.spiffeId}`);
    expect(forwardedClientCert(null, { spiffeId: '', certSha256: 'cd' })).toBe('Hash=cd');
  });
});
