// `skein control --kubeconfig FILE` discovering a service from the Kubernetes API and pushing it to a real
// `skein proxy --control`, which routes real requests to real local HTTP servers whose addresses are in the
// EndpointSlices. The API server is a fake (test/support/kube-api.ts) because no API server runs on this
// machine: it speaks the real list/watch protocol, starting from the recorded Service and EndpointSlice
// responses in test/fixtures/kubernetes with the endpoints pointed at the local servers. Processes are killed
// by PID; the fake and the upstreams are closed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, startSkeinControl } from '../support/control.ts';
import { httpGet } from '../support/http-client.ts';
import { FakeKubeApi, fixtureList, type KubeObject } from '../support/kube-api.ts';
import { freePort, killAllSkein, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { startEchoUpstream, type Upstream } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

let dir: string;
let fake: FakeKubeApi | undefined;
let upstreams: Upstream[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-k8s-e2e-'));
  upstreams = [];
});

afterEach(async () => {
  await killAllSkein();
  await fake?.close();
  fake = undefined;
  await Promise.all(upstreams.map((u) => u.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function upstream(name: string): Promise<Upstream> {
  const u = await startEchoUpstream(name);
  upstreams.push(u);
  return u;
}

/** The recorded `app` slice with one ready endpoint, 127.0.0.1 on `port`, of pod `pod`. */
function slice(name: string, pod: string, port: number): KubeObject {
  const s = structuredClone(fixtureList('endpointslices').items.find((x) => x.metadata.name === 'app-7xk2p')!);
  s.metadata.name = name;
  s.endpoints = [
    {
      addresses: ['127.0.0.1'],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { kind: 'Pod', namespace: 'default', name: pod },
      nodeName: 'node-a',
    },
  ];
  // The Service's port `http` (targetPort `web`) resolved to this pod's container port.
  s.ports = [{ name: 'http', protocol: 'TCP', port, appProtocol: 'http' }];
  return s;
}

function pod(name: string, version: string): KubeObject {
  const p = structuredClone(fixtureList('pods').items[0]);
  p.metadata = { ...p.metadata, name, labels: { app: 'app', version } };
  return p;
}

async function servedBy(p: RunningSkein, headers: Record<string, string>): Promise<string> {
  const r = await httpGet(`${p.url()}/hello`, { headers });
  return String(r.headers['x-served-by'] ?? `status ${r.status}`);
}

describe('skein control --kubeconfig', () => {
  it('pushes discovered endpoints to a proxy, which routes to them by version, follows the watch, and keeps them when the watch breaks', async () => {
    const [local, v1, v2, v2b] = [
      await upstream('local'),
      await upstream('v1'),
      await upstream('v2'),
      await upstream('v2b'),
    ];
    const app = fixtureList('services').items.find((s) => s.metadata.name === 'app')!;
    fake = await FakeKubeApi.start(dir, {
      services: [app],
      endpointslices: [slice('app-v1abc', 'app-v1-pod', v1.port), slice('app-v2def', 'app-v2-pod', v2.port)],
      pods: [pod('app-v1-pod', 'v1'), pod('app-v2-pod', 'v2')],
    });
    const control = await startSkeinControl(join(dir, 'control'), [
      '--kubeconfig',
      fake.writeKubeconfig(join(dir, 'kubeconfig')),
      '--kube-namespace',
      'default',
    ]);
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      [
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        local.address,
        '--service',
        'frontend',
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--control',
        control.url,
        '--state-dir',
        join(dir, 'proxy-state'),
      ],
      { adminPort },
    );
    // A rule sends x-to: app to the discovered service app.default, version v2; x-to: app-any to any version.
    for (const rule of [
      {
        id: 'to-app-v2',
        conditions: [{ type: 'header', field: 'x-to', value: 'app' }],
        destinations: [{ service: 'app.default', version: 'v2' }],
      },
      {
        id: 'to-app-v1',
        conditions: [{ type: 'header', field: 'x-to', value: 'app-v1' }],
        destinations: [{ service: 'app.default', version: 'v1' }],
      },
    ])
      expect((await api(control.url, 'POST', '/v1/rules', rule)).status).toBe(201);
    await waitForAsync(async () => ((await servedBy(proxy, { 'x-to': 'app' })) === 'v2' ? true : undefined), 10_000);
    expect(await servedBy(proxy, { 'x-to': 'app-v1' })).toBe('v1');
    expect(await servedBy(proxy, {})).toBe('local');

    // The v2 pod is replaced by one on another port: the watch event reaches the proxy.
    fake.upsert('pods', pod('app-v2-pod2', 'v2'));
    fake.upsert('endpointslices', slice('app-v2def', 'app-v2-pod2', v2b.port));
    await waitForAsync(async () => ((await servedBy(proxy, { 'x-to': 'app' })) === 'v2b' ? true : undefined), 10_000);

    // The API server goes away (watches broken, lists failing): the proxy keeps routing to what it has.
    fake.failLists(1_000_000);
    fake.compact();
    fake.dropWatches();
    type Discovery = { kubernetes: { resources: { lastError: string | null }[] } };
    await waitForAsync(async () =>
      (await api<Discovery>(control.url, 'GET', '/v1/discovery')).body.kubernetes.resources.some(
        (r) => r.lastError?.startsWith('list failed') === true,
      )
        ? true
        : undefined,
    );
    expect(await servedBy(proxy, { 'x-to': 'app' })).toBe('v2b');
    expect(await servedBy(proxy, { 'x-to': 'app-v1' })).toBe('v1');

    // The API server is back: v2 is scaled to zero, so its cluster is empty (503, UH), not missing (a NACK).
    fake.failLists(0);
    fake.remove('endpointslices', 'default', 'app-v2def');
    await waitForAsync(
      async () => ((await servedBy(proxy, { 'x-to': 'app' })) === 'status 503' ? true : undefined),
      10_000,
    );
    const r = await httpGet(`${proxy.url()}/hello`, { headers: { 'x-to': 'app' } });
    expect(r.headers['x-skein-flags']).toBe('UH');
    expect(await servedBy(proxy, { 'x-to': 'app-v1' })).toBe('v1');
    // The Service is deleted while rules still name it: it stays, empty, until they are gone.
    fake.remove('services', 'default', 'app');
    await waitForAsync(async () => ((await servedBy(proxy, { 'x-to': 'app-v1' })) === 'status 503' ? true : undefined));
    type Row = { lastNack: unknown; lastAck: { version: number } | null };
    const version = (await api<{ version: number }>(control.url, 'GET', '/v1/config')).body.version;
    await waitForAsync(async () =>
      (await api<Row[]>(control.url, 'GET', '/proxies')).body[0].lastAck?.version === version ? true : undefined,
    );
    expect((await api<Row[]>(control.url, 'GET', '/proxies')).body[0].lastNack).toBeNull();
  });
});
