import { describe, expect, it } from 'vitest';
import { checkTrustDomain, parseSpiffeId, parseSpiffeIdIn } from '../../certs/spiffe.ts';

describe('SPIFFE ids', () => {
  it('reads trust domain, namespace and service account from spiffe://TD/ns/NS/sa/SA', () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/default/sa/web')).toEqual({
      trustDomain: 'cluster.local',
      namespace: 'default',
      serviceAccount: 'web',
      uri: 'spiffe://cluster.local/ns/default/sa/web',
    });
  });

  it.each([
    ['http://cluster.local/ns/a/sa/b', /must start with spiffe:\/\//],
    ['spiffe://Cluster.local/ns/a/sa/b', /lowercase/],
    ['spiffe://cluster.local:8443/ns/a/sa/b', /no port/],
    ['spiffe://user@cluster.local/ns/a/sa/b', /no port, no user info/],
    ['spiffe:///ns/a/sa/b', /trust domain is empty/],
    ['spiffe://cluster.local/ns/a/sa/b/', /empty path segment/],
    ['spiffe://cluster.local/ns//sa/b', /empty path segment/],
    ['spiffe://cluster.local/ns/../sa/b', /'\.' or '\.\.'/],
    ['spiffe://cluster.local/ns/a/sa/b?x=1', /query or fragment/],
    ['spiffe://cluster.local/ns/a%20b/sa/b', /may only hold letters/],
    ['spiffe://cluster.local/web', /\/ns\/<namespace>\/sa\/<service-account>/],
    ['spiffe://cluster.local', /\/ns\/<namespace>\/sa\/<service-account>/],
  ])('refuses %s', (id, message) => {
    expect(() => parseSpiffeId(id)).toThrow(message);
  });

  it('refuses an id of another trust domain when one is required', () => {
    expect(() => parseSpiffeIdIn('spiffe://evil.example/ns/a/sa/b', 'cluster.local')).toThrow(
      /trust domain 'evil.example', not this CA's 'cluster.local'/,
    );
  });

  it('accepts trust domains of lowercase letters, digits, dots, dashes and underscores only', () => {
    expect(() => checkTrustDomain('prod-1.example_org')).not.toThrow();
    expect(() => checkTrustDomain('a'.repeat(256))).toThrow(/longer than 255/);
  });
});
