// What a proxy's overlay holds for the services its rules name: without sockets.
import { describe, expect, it } from 'vitest';
import { overlayFor, Rule, Service } from '../../control/rules.ts';

describe('overlay clusters', () => {
  it('has a cluster, empty, for a version a rule names that no endpoint has (503 at the proxy, not a NACK)', () => {
    const app = Service.parse({ id: 'app', endpoints: [{ address: '10.0.0.1:80', version: 'v1' }] });
    const rule = Rule.parse({ id: 'r', destinations: [{ service: 'app', version: 'v2' }] });
    const overlay = overlayFor('frontend', [rule], new Map([['app', app]]), 3);
    const clusters = overlay.clusters as { name: string; discovery: { endpoints: unknown[] } }[];
    expect(clusters.map((c) => [c.name, c.discovery.endpoints.length])).toEqual([
      ['app', 1],
      ['app--v1', 1],
      ['app--v2', 0],
    ]);
  });

  it('gives every proxy the cluster of a service with addresses of its own (capture routes by them), meshed endpoints labelled', () => {
    const reviews = Service.parse({
      id: 'reviews',
      addresses: ['10.96.0.10:9080'],
      endpoints: [{ address: '10.244.0.7:9080', mesh: true }],
    });
    const overlay = overlayFor('frontend', [], new Map([['reviews', reviews]]), 1);
    expect(overlay.routes).toEqual([]);
    expect(overlay.clusters).toEqual([
      {
        name: 'reviews',
        service: 'reviews',
        protocol: 'auto',
        lb: { policy: 'round-robin' },
        discovery: { type: 'static', endpoints: [{ address: '10.244.0.7:9080', weight: 1, labels: { mesh: 'true' } }] },
        serviceAddresses: ['10.96.0.10:9080'],
      },
    ]);
  });
});
