// Control's Kubernetes discovery against a fake API server (test/support/kube-api.ts): a fake, because no API
// server runs on this machine; it speaks the real list/watch protocol from recorded responses, and the client is
// the real @kubernetes/client-node reading a kubeconfig that points at it. Covers the initial list, watch
// events, a dropped watch resuming from the last resourceVersion, a 410 Gone relist, that a broken watch (or
// failing lists) never hands over an emptied set, and the rule between discovered and API-written services.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesDiscovery } from '../../../control/kubernetes/discovery.ts';
import type { Service } from '../../../control/rules.ts';
import { type ControlServer, startControl } from '../../../control/server.ts';
import { api, useToken } from '../../support/control.ts';
import { FakeKubeApi, type KubeObject } from '../../support/kube-api.ts';
import { waitFor, waitForAsync } from '../../support/wait-for.ts';

let dir: string;
let fake: FakeKubeApi;
let discovery: KubernetesDiscovery | undefined;
let control: ControlServer | undefined;
let handed: Service[][];
let logs: string[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skein-k8s-'));
  fake = await FakeKubeApi.start(dir);
  handed = [];
  logs = [];
});

afterEach(async () => {
  await discovery?.close();
  discovery = undefined;
  await control?.close();
  control = undefined;
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(namespace?: string): KubernetesDiscovery {
  discovery = new KubernetesDiscovery(
    { kubeconfig: fake.writeKubeconfig(join(dir, 'kubeconfig')), retryBaseMs: 5, ...(namespace && { namespace }) },
    async (services) => void handed.push(services),
    (level, message) => void logs.push(`${level} ${message}`),
  );
  return discovery;
}

/** The endpoints of `id` in the last set handed over. */
function endpoints(id: string): Service['endpoints'] | undefined {
  return handed.at(-1)?.find((s) => s.id === id)?.endpoints;
}

/** Waits for the set handed over to satisfy `check`. */
function until(check: () => boolean): Promise<boolean> {
  return waitFor(() => handed.length > 0 && check());
}

/** The fixture's app slice, with `change` applied. */
function appSlice(change: (s: { endpoints: Record<string, unknown>[] }) => void): KubeObject {
  const s = fake.get('endpointslices', 'default', 'app-7xk2p');
  change(s as unknown as { endpoints: Record<string, unknown>[] });
  return s;
}

const readyEndpoint = (ip: string, pod: string) => ({
  addresses: [ip],
  conditions: { ready: true, serving: true, terminating: false },
  targetRef: { kind: 'Pod', namespace: 'default', name: pod },
});

describe('Kubernetes discovery (list and watch)', () => {
  it('lists Services, EndpointSlices and versioned Pods, then watches each from the list resourceVersion', async () => {
    start();
    await until(() => endpoints('app.default') !== undefined);
    expect(handed).toHaveLength(1); // one hand-over for the three lists together
    expect(endpoints('app.default')).toEqual([
      { address: '10.244.1.5:8080', weight: 1, version: 'v1' },
      { address: '10.244.2.7:8080', weight: 1, version: 'v2' },
    ]);
    expect(handed[0].map((s) => s.id)).toEqual(['app.default', 'billing.payments', 'kubernetes.default']);
    // Pods: only those with a version label, in the list and the watch.
    expect(fake.listRequests('pods')[0].query.get('labelSelector')).toBe('version');
    await waitFor(
      () => fake.openWatches('services') + fake.openWatches('endpointslices') + fake.openWatches('pods') === 3,
    );
    for (const kind of ['services', 'endpointslices', 'pods'] as const) {
      const q = fake.watchRequests(kind)[0].query;
      expect(q.get('resourceVersion')).toBe('1040');
      expect(q.get('allowWatchBookmarks')).toBe('true');
      expect(q.get('watch')).toBe('true');
      expect(fake.watchRequests(kind)[0].namespace).toBeNull(); // all namespaces
    }
    expect(fake.watchRequests('pods')[0].query.get('labelSelector')).toBe('version');
  });

  it('takes in ADDED, MODIFIED and DELETED events', async () => {
    start();
    await until(() => endpoints('app.default') !== undefined);
    await waitFor(() => fake.openWatches('endpointslices') === 1 && fake.openWatches('services') === 1);
    // The pending v2 pod becomes ready.
    fake.upsert(
      'endpointslices',
      appSlice((s) => {
        s.endpoints[3].conditions = { ready: true, serving: true, terminating: false };
      }),
    );
    await until(() => endpoints('app.default')?.length === 3);
    expect(endpoints('app.default')).toContainEqual({ address: '10.244.3.3:8080', weight: 1, version: 'v2' });
    // A new versioned pod and its endpoint.
    fake.upsert('pods', {
      metadata: { name: 'app-v3-1', namespace: 'default', labels: { app: 'app', version: 'v3' } },
    });
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.push(readyEndpoint('10.244.4.4', 'app-v3-1'))),
    );
    await until(() => endpoints('app.default')?.some((e) => e.version === 'v3') === true);
    fake.remove('services', 'payments', 'billing');
    await until(() => handed.at(-1)!.every((s) => s.id !== 'billing.payments'));
  });

  it('resumes a dropped watch from the last resourceVersion it saw (events and bookmarks), without listing again', async () => {
    start();
    await until(() => endpoints('app.default') !== undefined);
    await waitFor(() => fake.openWatches('endpointslices') === 1);
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.push(readyEndpoint('10.244.5.5', 'x'))),
    );
    await until(() => endpoints('app.default')?.length === 3);
    fake.bookmark(); // moves every watch's resourceVersion to the current one
    const bookmarked = String(fake.resourceVersion);
    await waitFor(() => discovery!.status().resources.every((r) => r.resourceVersion === bookmarked));
    const lists = fake.requests.filter((r) => !r.watch).length;
    fake.dropWatches();
    // Changed while no watch is open: the resumed watch replays it.
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.splice(0, 1)),
    );
    await until(() => endpoints('app.default')?.some((e) => e.address === '10.244.1.5:8080') === false);
    await waitFor(() =>
      (['services', 'endpointslices', 'pods'] as const).every((k) => fake.watchRequests(k).length >= 2),
    );
    for (const kind of ['services', 'endpointslices', 'pods'] as const) {
      const watches = fake.watchRequests(kind);
      expect(watches.length).toBeGreaterThanOrEqual(2);
      expect(watches[1].query.get('resourceVersion')).toBe(bookmarked);
    }
    expect(fake.requests.filter((r) => !r.watch)).toHaveLength(lists);
    expect(discovery!.status().resources.every((r) => r.resumes >= 1 && r.relists === 0)).toBe(true);
  });

  it('lists again on 410 Gone and hands over what the new list holds', async () => {
    start();
    await until(() => endpoints('app.default') !== undefined);
    await waitFor(() => fake.openWatches('endpointslices') === 1);
    const seen = fake.resourceVersion;
    fake.dropWatches();
    // While disconnected: a change, then the history is compacted away.
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.splice(1, 1)),
    );
    fake.compact();
    await until(() => endpoints('app.default')?.length === 1);
    expect(endpoints('app.default')).toEqual([{ address: '10.244.1.5:8080', weight: 1, version: 'v1' }]);
    const watches = fake.watchRequests('endpointslices');
    expect(watches[1].query.get('resourceVersion')).toBe(String(seen)); // the resume, answered 410
    expect(fake.listRequests('endpointslices')).toHaveLength(2);
    await waitFor(() => fake.watchRequests('endpointslices').length >= 3);
    expect(fake.watchRequests('endpointslices')[2].query.get('resourceVersion')).toBe(String(fake.resourceVersion));
    expect(discovery!.status().resources.find((r) => r.name === 'endpointslices')?.relists).toBe(1);
  });

  it('never hands over an empty endpoint set because a watch broke: the last set stays until a list completes', async () => {
    start();
    await until(() => endpoints('app.default') !== undefined);
    await waitFor(() => fake.openWatches('endpointslices') === 1);
    const before = handed.length;
    // All in one turn: the API server fails its lists, a watch drops, a change comes, the history is compacted.
    fake.failLists(1_000_000);
    fake.dropWatches();
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.splice(0, 1)),
    );
    fake.compact();
    // Every watch resumes, gets 410 Gone, and each relist fails.
    await waitFor(() => fake.listRequests('endpointslices').length >= 4 && fake.listRequests('services').length >= 4);
    expect(discovery!.status().resources.every((r) => r.lastError?.startsWith('list failed') === true)).toBe(true);
    expect(discovery!.status().synced).toBe(true);
    await discovery!.settled();
    expect(handed).toHaveLength(before); // nothing handed over meanwhile: the last set stays
    // The API answers again: the relist completes with the changed set.
    fake.failLists(0);
    await until(() => endpoints('app.default')?.length === 1);
    expect(handed.every((set) => (set.find((s) => s.id === 'app.default')?.endpoints.length ?? 0) > 0)).toBe(true);
    expect(logs.some((l) => l.startsWith('warn kubernetes endpointslices: list failed'))).toBe(true);
  });

  it('works in-cluster from the service account files and KUBERNETES_SERVICE_HOST/_PORT', async () => {
    const root = join(dir, 'pod');
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), fake.token);
    writeFileSync(join(sa, 'ca.crt'), fake.caPem);
    writeFileSync(join(sa, 'namespace'), 'default');
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      delete process.env.KUBERNETES_SERVICE_HOST;
      expect(
        () =>
          new KubernetesDiscovery(
            {},
            async () => {},
            () => {},
          ),
      ).toThrow('not in a Kubernetes pod');
      process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
      process.env.KUBERNETES_SERVICE_PORT = new URL(fake.url).port;
      discovery = new KubernetesDiscovery(
        { serviceAccountRoot: root, retryBaseMs: 5 },
        async (services) => void handed.push(services),
        (level, message) => void logs.push(`${level} ${message}`),
      );
    } finally {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    await until(() => endpoints('app.default')?.length === 2);
  });

  it('watches one namespace with --kube-namespace', async () => {
    start('payments');
    await until(() => handed.at(-1)!.length === 1);
    expect(handed.at(-1)!.map((s) => s.id)).toEqual(['billing.payments']);
    await waitFor(() => fake.openWatches('services') === 1);
    expect(fake.watchRequests('services')[0].namespace).toBe('payments');
  });
});

describe('discovered services in the traffic model', () => {
  it('compiles them to clusters like API-written ones; an API-written service of the same id wins', async () => {
    control = await startControl({
      host: '127.0.0.1',
      port: 0,
      dataDir: join(dir, 'control'),
      retentionDays: 1,
      log: () => {},
      kubernetes: { kubeconfig: fake.writeKubeconfig(join(dir, 'kubeconfig')), retryBaseMs: 5 },
    });
    useToken(control.url, control.token.token);
    const rule = { id: 'to-v2', destinations: [{ service: 'app.default', version: 'v2' }] };
    expect((await api(control.url, 'POST', '/v1/rules', rule)).status).toBe(201);
    type Cluster = { name: string; discovery: { endpoints: { address: string }[] } };
    const clusters = async () =>
      (await api<{ clusters: Cluster[] }>(control!.url, 'GET', '/v1/config?service=frontend')).body.clusters;
    const addresses = async (name: string) =>
      (await clusters()).find((c) => c.name === name)?.discovery.endpoints.map((e) => e.address);
    await waitForAsync(async () => (await addresses('app.default--v2'))?.[0] === '10.244.2.7:8080');
    expect(await addresses('app.default')).toEqual(['10.244.1.5:8080', '10.244.2.7:8080']);

    // An operator's service of the same id shadows the discovered one; the watch never overwrites it.
    const manual = { id: 'app.default', endpoints: [{ address: '192.0.2.1:80', version: 'v2' }] };
    expect((await api(control.url, 'POST', '/v1/services', manual)).status).toBe(201);
    expect(await addresses('app.default--v2')).toEqual(['192.0.2.1:80']);
    fake.upsert(
      'endpointslices',
      appSlice((s) => void s.endpoints.push(readyEndpoint('10.244.6.6', 'app-v2-5c7d8e9f4-r5t6y'))),
    );
    type Discovered = { kubernetes: { synced: boolean }; services: (Service & { shadowed: boolean })[] };
    const discovered = async () => (await api<Discovered>(control!.url, 'GET', '/v1/discovery')).body;
    await waitForAsync(async () =>
      (await discovered()).services.find((s) => s.id === 'app.default')?.endpoints.length === 3 ? true : undefined,
    );
    expect((await discovered()).services.find((s) => s.id === 'app.default')?.shadowed).toBe(true);
    expect((await discovered()).kubernetes.synced).toBe(true);
    expect(await addresses('app.default--v2')).toEqual(['192.0.2.1:80']);
    const services = (await api<Service[]>(control.url, 'GET', '/v1/services')).body;
    expect(services.map((s) => s.id)).toEqual(['app.default']); // the API's own list: API-written only

    // Deleting the operator's service lets the discovered one through again; the rule using it does not stop
    // that, since the discovered service takes over as its destination.
    expect((await api(control.url, 'DELETE', '/v1/services/app.default')).status).toBe(200);
    expect(await addresses('app.default--v2')).toEqual(['10.244.2.7:8080', '10.244.6.6:8080']);
    // A service only the API knows still cannot be deleted while a rule uses it.
    expect((await api(control.url, 'POST', '/v1/services', { id: 'other', endpoints: [] })).status).toBe(201);
    const other = { id: 'to-other', destinations: [{ service: 'other' }] };
    expect((await api(control.url, 'POST', '/v1/rules', other)).status).toBe(201);
    expect((await api(control.url, 'DELETE', '/v1/services/other')).status).toBe(409);
  });
});
