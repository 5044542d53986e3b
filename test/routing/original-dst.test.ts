// Routing by original destination (transparent capture): the config that declares it, the table compiled from
// it, and the route stage's choice between a matching route, a cluster's service address and the fallback.
import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/config/compile.ts';
import { ConfigError, loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { originalDstKey } from '../../src/discovery/address.ts';
import { routeByOriginalDst } from '../../src/routing/original-dst.ts';

const captured = {
  listeners: [
    {
      name: 'outbound-capture',
      address: '0.0.0.0:15001',
      originalDst: true,
      cluster: 'passthrough',
      routes: [{ name: 'by-host', match: { headers: [{ name: 'host', exact: 'api.internal' }] }, cluster: 'api' }],
    },
  ],
  clusters: [
    { name: 'passthrough', discovery: { type: 'original-dst' } },
    {
      name: 'api',
      serviceAddresses: ['10.96.0.10:80', '[FD00::10]:80'],
      discovery: { type: 'static', endpoints: [{ address: '10.0.0.5:8080' }] },
    },
  ],
};

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

describe('original-destination routing', () => {
  it('writes config addresses in the kernel answer form: IPv4 as is, IPv6 lowercase and compressed in brackets', () => {
    expect(originalDstKey('10.96.0.10:80')).toBe('10.96.0.10:80');
    expect(originalDstKey('[FD00:0:0:0::10]:443')).toBe('[fd00::10]:443');
    expect(originalDstKey('[::ffff:10.0.0.1]:80')).toBe('[::ffff:a00:1]:80');
  });

  it('compiles a Map from each service address to a route to its cluster, and a fallback for the rest', () => {
    const snap = compileSnapshot(parseConfig(captured), 1, (c) => c.name);
    const table = snap.listeners.get('outbound-capture')!.originalDst!;
    expect([...table.byAddress.keys()]).toEqual(['10.96.0.10:80', '[fd00::10]:80']);
    expect(routeByOriginalDst(table, '10.96.0.10:80')).toMatchObject({ name: 'original-dst:api', clusters: ['api'] });
    expect(routeByOriginalDst(table, '[fd00::10]:80').clusters).toEqual(['api']);
    expect(routeByOriginalDst(table, '10.96.0.10:81')).toMatchObject({
      name: 'original-dst:passthrough',
      clusters: ['passthrough'],
    });
    expect(routeByOriginalDst(table, undefined).clusters).toEqual(['passthrough']);
  });

  it('leaves listeners without originalDst as they were: no table, routes required', () => {
    const snap = compileSnapshot(
      parseConfig({
        ...captured,
        listeners: [{ name: 'plain', address: '127.0.0.1:0', routes: [{ cluster: 'api' }] }],
      }),
      1,
      (c) => c.name,
    );
    expect(snap.listeners.get('plain')!.originalDst).toBeUndefined();
    expect(problemsOf({ ...captured, listeners: [{ name: 'plain', address: '127.0.0.1:0' }] })).toEqual([
      'listeners[0].routes: an http listener needs at least one route',
    ]);
  });

  it('accepts a captured http listener with no routes, and a captured tcp listener', () => {
    const cfg = parseConfig({
      ...captured,
      listeners: [
        { name: 'out', address: '0.0.0.0:15001', originalDst: true, cluster: 'passthrough' },
        {
          name: 'in',
          address: '0.0.0.0:15006',
          direction: 'inbound',
          protocol: 'tcp',
          originalDst: true,
          cluster: 'passthrough',
        },
      ],
    });
    expect(cfg.listeners[0]).toMatchObject({ originalDst: true, protocolDetectionTimeoutMs: 1000, routes: [] });
  });

  it('refuses per-endpoint policies on an original-dst cluster (one endpoint per destination, none to balance over)', () => {
    const listeners = [{ name: 'out', address: '0.0.0.0:15001', originalDst: true, cluster: 'passthrough' }];
    const clusters = [
      {
        name: 'passthrough',
        discovery: { type: 'original-dst' },
        outlierDetection: {},
        circuitBreakers: { endpoint: {} },
      },
    ];
    expect(problemsOf({ listeners, clusters })).toEqual([
      'clusters[0].outlierDetection: an original-dst cluster has one endpoint per destination: no outlierDetection',
      'clusters[0].circuitBreakers.endpoint: an original-dst cluster has one endpoint per destination: no endpoint breaker',
    ]);
  });

  it('examples/capture.yaml (a sidecar with transparent capture) is valid', () => {
    const cfg = loadConfigFile(new URL('../../examples/capture.yaml', import.meta.url).pathname);
    expect(cfg.listeners.map((l) => [l.name, l.address, l.originalDst])).toEqual([
      ['outbound-capture', '0.0.0.0:15001', true],
      ['inbound-capture', '0.0.0.0:15006', true],
    ]);
  });

  it('refuses a captured listener without a fallback cluster, a bad service address and one claimed twice', () => {
    expect(
      problemsOf({ ...captured, listeners: [{ name: 'out', address: '0.0.0.0:15001', originalDst: true }] }),
    ).toEqual([
      'listeners[0].cluster: an originalDst listener needs cluster: where unclaimed destinations go (e.g. a cluster with discovery: { type: original-dst })',
    ]);
    const clusters = [
      { name: 'passthrough', discovery: { type: 'original-dst', host: '127.0.0.1' } },
      { name: 'a', serviceAddresses: ['api.internal:80'], discovery: { type: 'original-dst' } },
      { name: 'b', serviceAddresses: ['[fd00::10]:80'], discovery: { type: 'original-dst' } },
      { name: 'c', serviceAddresses: ['[FD00:0::10]:80'], discovery: { type: 'original-dst' } },
    ];
    const listeners = [{ name: 'out', address: '0.0.0.0:15001', originalDst: true, cluster: 'passthrough' }];
    expect(problemsOf({ listeners, clusters })).toEqual([
      'clusters[1].serviceAddresses[0]: expected an IP address and port, e.g. 10.96.0.10:80 or [fd00::10]:80',
      "clusters[3].serviceAddresses[0]: [FD00:0::10]:80 is already a service address of cluster 'b'",
    ]);
    expect(
      problemsOf({
        ...captured,
        clusters: [{ name: 'passthrough', discovery: { type: 'original-dst', host: 'localhost' } }],
      }),
    ).toHaveLength(1);
  });
});
