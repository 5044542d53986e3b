// Passive outlier detection against real upstreams: an endpoint that answers 503 to everything, or refuses
// connections, is ejected after 5 in a row and the rest of the traffic goes to the healthy one; it comes back by
// itself; and its ejection survives a reload that keeps the cluster's config.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet } from '../support/http-client.ts';
import { startEchoUpstream, startProxy, type RunningProxy, type Upstream } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

interface EndpointView {
  address: string;
  health: string;
  ejections?: number;
  ejectedUntil?: string;
}

function endpoint(proxy: RunningProxy, address: string): EndpointView | undefined {
  const c = proxy.proxy.snapshot.clusters.get('app')!.describe() as { endpoints: EndpointView[] };
  return c.endpoints.find((e) => e.address === address);
}

type OutlierInput = NonNullable<ConfigInput['clusters']>[number]['outlierDetection'];

function config(addresses: string[], outlierDetection: OutlierInput, idleTimeoutMs = 60_000): ConfigInput {
  return {
    admin: { address: '127.0.0.1:0' },
    // Retries off: the tests count the failures each endpoint gives the client.
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        idleTimeoutMs,
        stages: { retry: { maxRetries: 0 } },
        routes: [{ cluster: 'app' }],
      },
    ],
    clusters: [
      {
        name: 'app',
        discovery: { type: 'static', endpoints: addresses.map((address) => ({ address })) },
        outlierDetection,
      },
    ],
  };
}

function upstream(name: string, status: () => number): Promise<Upstream> {
  return startEchoUpstream(name, (_req, res) => {
    res.writeHead(status(), { 'x-served-by': name }).end(name);
  });
}

/** Who answered each of `n` requests in turn (x-served-by, or the proxy's status and flag). */
async function servedBy(proxy: RunningProxy, n: number): Promise<string[]> {
  const who: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await httpGet(`${proxy.url()}/`);
    who.push(String(r.headers['x-served-by'] ?? `${r.status} ${String(r.headers['x-skein-flags'])}`));
  }
  return who;
}

describe('outlier detection', () => {
  let proxy: RunningProxy | undefined;
  const upstreams: Upstream[] = [];
  afterEach(async () => {
    await proxy?.close();
    for (const u of upstreams.splice(0)) await u.close();
  });

  it('ejects an endpoint that answers 503 to everything after 5, and the rest goes to the healthy one', async () => {
    const bad = await upstream('bad', () => 503);
    const good = await upstream('good', () => 200);
    upstreams.push(bad, good);
    proxy = await startProxy(config([bad.address, good.address], { baseEjectionTimeMs: 60_000 }));

    const who = await servedBy(proxy, 40);
    expect(who.filter((w) => w === 'bad')).toHaveLength(5);
    expect(who.slice(who.lastIndexOf('bad') + 1).every((w) => w === 'good')).toBe(true);
    const ep = endpoint(proxy, bad.address)!;
    expect(ep.health).toBe('ejected');
    expect(ep.ejections).toBe(1);
    expect(Date.parse(ep.ejectedUntil!)).toBeGreaterThan(Date.now());
    expect(endpoint(proxy, good.address)?.health).toBe('healthy');

    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    expect(metrics).toContain('skein_outlier_ejections_total{cluster="app"} 1');
    expect(metrics).toContain('skein_endpoints_ejected{cluster="app"} 1');
    expect(metrics).toContain('skein_endpoints_healthy{cluster="app"} 1');
    expect(metrics).toContain('service_mesh_outlier_ejections_total{destination_service="app"} 1');
  });

  it('ejects an endpoint that refuses connections (gateway errors) the same way', async () => {
    const good = await upstream('good', () => 200);
    upstreams.push(good);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const dead = `127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
    await new Promise<void>((r) => closed.close(() => r()));
    proxy = await startProxy(config([dead, good.address], { consecutive5xx: 0, baseEjectionTimeMs: 60_000 }));

    const who = await servedBy(proxy, 30);
    expect(who.filter((w) => w === '503 UF')).toHaveLength(5);
    expect(who.slice(who.lastIndexOf('503 UF') + 1).every((w) => w === 'good')).toBe(true);
    expect(endpoint(proxy, dead)?.health).toBe('ejected');
  });

  it('brings an ejected endpoint back by itself once its ejection time is over', async () => {
    let status = 503;
    const flaky = await upstream('flaky', () => status);
    const good = await upstream('good', () => 200);
    upstreams.push(flaky, good);
    proxy = await startProxy(config([flaky.address, good.address], { intervalMs: 50, baseEjectionTimeMs: 200 }));

    // Its ejection is short, so it may be over by the time we look: read the count, not the state.
    await servedBy(proxy, 10);
    expect(endpoint(proxy, flaky.address)?.ejections).toBe(1);
    status = 200;
    await waitFor(() => endpoint(proxy!, flaky.address)?.health === 'healthy');
    expect(endpoint(proxy, flaky.address)?.ejections).toBe(1);
    expect(new Set(await servedBy(proxy, 6))).toEqual(new Set(['flaky', 'good']));
  });

  it("keeps an ejection across a reload that keeps the cluster's config", async () => {
    const bad = await upstream('bad', () => 503);
    const good = await upstream('good', () => 200);
    upstreams.push(bad, good);
    const outlier = { baseEjectionTimeMs: 60_000 };
    proxy = await startProxy(config([bad.address, good.address], outlier));
    await servedBy(proxy, 10);
    expect(endpoint(proxy, bad.address)?.health).toBe('ejected');
    const before = proxy.proxy.snapshot.clusters.get('app');

    // Another listener setting, the same cluster: the new Snapshot keeps the running cluster and its records.
    await proxy.proxy.apply(parseConfig(config([bad.address, good.address], outlier, 30_000), 'test'));
    expect(proxy.proxy.snapshot.version).toBe(2);
    expect(proxy.proxy.snapshot.clusters.get('app')).toBe(before);
    expect(endpoint(proxy, bad.address)).toMatchObject({ health: 'ejected', ejections: 1 });
    expect(new Set(await servedBy(proxy, 10))).toEqual(new Set(['good']));
  });
});
