// Kubernetes objects → Skein services without sockets, from the recorded list responses in
// test/fixtures/kubernetes: ids, port choice (named ports through the EndpointSlice's ports), endpoint
// conditions, and each pod's version label.
import { describe, expect, it } from 'vitest';
import {
  discoveredServices,
  type KubeEndpointSlice,
  type KubeService,
  objectKey,
} from '../../../control/kubernetes/translate.ts';
import { fixtureList } from '../../support/kube-api.ts';

function versions(): Map<string, string> {
  return new Map(fixtureList('pods').items.map((p) => [objectKey(p.metadata), p.metadata.labels!.version]));
}

const services = () => fixtureList('services').items as KubeService[];
const slices = () => fixtureList('endpointslices').items as unknown as KubeEndpointSlice[];

describe('Kubernetes objects to services', () => {
  it('maps each Service NAME in NAMESPACE to NAME.NAMESPACE with its ready endpoints, versioned by pod label', () => {
    expect(discoveredServices(services(), slices(), versions())).toEqual([
      {
        id: 'app.default',
        addresses: ['10.96.41.17:80'], // the cluster IP with the Service's port: what captured clients dial
        protocol: 'auto',
        lb: 'round-robin',
        // The terminating pod (10.244.1.9) and the not-ready one (10.244.3.3) are left out: others are ready.
        endpoints: [
          { address: '10.244.1.5:8080', weight: 1, version: 'v1' },
          { address: '10.244.2.7:8080', weight: 1, version: 'v2' },
        ],
      },
      {
        // skein.io/port: grpc picks the grpc port among two; its slice port number is the resolved target port.
        id: 'billing.payments',
        addresses: ['10.96.88.2:9090'],
        protocol: 'http2',
        lb: 'round-robin',
        endpoints: [{ address: '10.244.2.11:50051', weight: 1 }],
      },
      {
        id: 'kubernetes.default',
        addresses: ['10.96.0.1:443'],
        protocol: 'auto',
        lb: 'round-robin',
        endpoints: [{ address: '172.18.0.2:6443', weight: 1 }],
      },
    ]);
  });

  it('marks the endpoints of a Service annotated skein.io/mesh as meshed; a headless Service has no addresses', () => {
    const svcs = services();
    const app = svcs.find((s) => s.metadata?.name === 'app') as unknown as {
      metadata: { annotations?: Record<string, string> };
      spec: { clusterIP: string; clusterIPs: string[] };
    };
    app.metadata.annotations = { ...app.metadata.annotations, 'skein.io/mesh': 'true' };
    app.spec.clusterIP = 'None';
    app.spec.clusterIPs = ['None'];
    const got = discoveredServices(svcs, slices(), versions()).find((x) => x.id === 'app.default')!;
    expect(got.addresses).toBeUndefined();
    expect(got.endpoints.map((e) => e.mesh)).toEqual([true, true]);
    const other = discoveredServices(svcs, slices(), versions()).find((x) => x.id === 'kubernetes.default')!;
    expect(other.endpoints[0]!.mesh).toBeUndefined();
  });

  it('falls back to serving endpoints that are terminating when none is ready (kube-proxy does the same)', () => {
    const s = slices();
    const app = s[0] as unknown as { endpoints: { conditions: { ready: boolean } }[] };
    for (const e of app.endpoints) e.conditions.ready = false;
    const got = discoveredServices(services(), s, versions()).find((x) => x.id === 'app.default');
    expect(got?.endpoints).toEqual([{ address: '10.244.1.9:8080', weight: 1, version: 'v1' }]);
  });

  it('reads an absent ready condition as ready, and a Service without slices as no endpoints', () => {
    const s = slices().filter((x) => x.metadata?.name === 'kubernetes');
    const got = discoveredServices(services(), s, new Map());
    expect(got.find((x) => x.id === 'kubernetes.default')?.endpoints).toEqual([
      { address: '172.18.0.2:6443', weight: 1 },
    ]);
    expect(got.find((x) => x.id === 'app.default')?.endpoints).toEqual([]);
  });

  it('uses the port named http among several, brackets IPv6 and skips slices without the chosen port', () => {
    const svc: KubeService = {
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        ports: [
          { name: 'admin', port: 9000 },
          { name: 'http', port: 80 },
        ],
      },
    };
    const slice = (name: string, port: string, addressType: string, ip: string): KubeEndpointSlice => ({
      metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType,
      endpoints: [{ addresses: [ip], conditions: { ready: true } }],
      ports: [{ name: port, port: 8080, protocol: 'TCP' }],
    });
    const got = discoveredServices(
      [svc],
      [slice('a', 'http', 'IPv6', 'fd00::5'), slice('b', 'admin', 'IPv4', '10.0.0.9'), slice('c', 'http', 'FQDN', 'x')],
      new Map(),
    );
    expect(got).toEqual([
      { id: 'web.shop', protocol: 'auto', lb: 'round-robin', endpoints: [{ address: '[fd00::5]:8080', weight: 1 }] },
    ]);
  });

  it('leaves out ExternalName Services and Services whose skein.io/port names no port', () => {
    const got = discoveredServices(
      [
        { metadata: { name: 'ext', namespace: 'a' }, spec: { type: 'ExternalName' } },
        {
          metadata: { name: 'b', namespace: 'a', annotations: { 'skein.io/port': 'nope' } },
          spec: { ports: [{ name: 'http', port: 80 }] },
        },
      ],
      [],
      new Map(),
    );
    expect(got).toEqual([]);
  });
});
