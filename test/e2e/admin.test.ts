// The admin listener as an orchestrator and an operator use it: readiness that waits for discovery, the
// running state (/config, /clusters, /listeners) that explains where traffic goes, and /metrics for Prometheus.
import { afterEach, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.ts';
import { configHash } from '../../src/config/compile.ts';
import { parseConfig } from '../../src/config/load.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describe('admin listener', () => {
  let dns: TestDnsServer | undefined;
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;

  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
    await dns?.close();
    proxy = upstream = dns = undefined;
  });

  it('reports not ready until every cluster has heard from its discovery source', async () => {
    dns = await startDnsServer();
    dns.setReplyDelayMs(1_500);
    dns.setRecords('app.test', [{ type: 'A', address: '127.0.0.1', ttlS: 30 }]);
    proxy = await startProxy({
      admin: { address: '127.0.0.1:0' },
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
      clusters: [
        {
          name: 'app',
          discovery: { type: 'dns', name: 'app.test', port: 8080, servers: [`127.0.0.1:${dns.port}`] },
        },
      ],
    });
    const first = await get(`${proxy.adminUrl()}/ready`);
    expect(first).toEqual({ status: 503, body: 'starting\n' });
    await waitForAsync(async () => (await get(`${proxy!.adminUrl()}/ready`)).status === 200, 10_000);
    const clusters = JSON.parse((await get(`${proxy.adminUrl()}/clusters`)).body);
    expect(clusters.clusters[0]).toMatchObject({
      name: 'app',
      warmed: true,
      endpoints: [{ address: '127.0.0.1:8080' }],
    });
  });

  it('shows the running config, its version and the bound listeners', async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({
      admin: { address: '127.0.0.1:0' },
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ name: 'all', cluster: 'app' }] }],
      clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream.address }] } }],
    });
    expect((await get(`${proxy.adminUrl()}/ready`)).status).toBe(200);
    const config = JSON.parse((await get(`${proxy.adminUrl()}/config`)).body);
    expect(config.version).toBe(1);
    expect(config.config.clusters[0].timeouts).toEqual({ connectMs: 1000, requestMs: 15000, idleMs: 4000 });
    // The content hash names the config: the one /config shows, rebuilt from its JSON alone, hashes the same.
    expect(config.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash(parseConfig(config.config))).toBe(config.hash);
    expect((await get(`${proxy.adminUrl()}/metrics`)).body).toContain(`skein_config_info{hash="${config.hash}"} 1`);
    const listeners = JSON.parse((await get(`${proxy.adminUrl()}/listeners`)).body);
    expect(listeners).toEqual([
      expect.objectContaining({
        name: 'main',
        address: `127.0.0.1:${proxy.port()}`,
        routes: [{ name: 'all', clusters: ['app'] }],
      }),
    ]);
    expect((await get(`${proxy.adminUrl()}/nothing`)).status).toBe(404);
  });

  it('serves Prometheus text on /metrics, counting the requests that went through the proxy', async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({
      service: 'web',
      admin: { address: '127.0.0.1:0' },
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ name: 'all', cluster: 'app' }] }],
      clusters: [
        {
          name: 'app',
          service: 'api',
          discovery: { type: 'static', endpoints: [{ address: upstream.address, labels: { version: 'v1' } }] },
        },
      ],
    });
    for (let i = 0; i < 3; i++) await (await fetch(`${proxy.url()}/items/${i}`)).text();
    const res = await fetch(`${proxy.adminUrl()}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = (await res.text()).split('\n');
    expect(lines).toContain(
      'service_mesh_requests_total{reporter="source",source_service="web",destination_service="api",destination_version="v1",' +
        'response_code="200",grpc_status="",response_flag=""} 3',
    );
    expect(lines).toContain('# TYPE service_mesh_request_duration_seconds histogram');
    expect(lines).toContain('skein_config_version 1');
    expect(lines.some((l) => l.startsWith('process_resident_memory_bytes '))).toBe(true);
    expect(lines.some((l) => l.includes('/items/'))).toBe(false);
    // Three sequential requests reuse one pooled upstream connection.
    expect(lines).toContain('skein_upstream_connections_active{cluster="app"} 1');
    expect(lines).toContain('skein_upstream_connections_total{cluster="app"} 1');
  });

  it('stops counting metrics per request when telemetry.metrics is disabled', async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({
      admin: { address: '127.0.0.1:0' },
      telemetry: { metrics: { enabled: false } },
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
      clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream.address }] } }],
    });
    await (await fetch(`${proxy.url()}/`)).text();
    const text = await (await fetch(`${proxy.adminUrl()}/metrics`)).text();
    expect(text).not.toMatch(/^service_mesh_requests_total\{/m);
    expect(text).toMatch(/^skein_config_version 1$/m);
  });
});
