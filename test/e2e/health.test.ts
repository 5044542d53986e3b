// Active health checks against real upstreams: an endpoint whose /health fails leaves rotation and comes back
// when it passes again; a TCP check finds a closed port; a gRPC health check asks a real grpc-js server.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startH2Upstream } from '../support/h2-upstream.ts';
import { httpGet } from '../support/http-client.ts';
import { startEchoUpstream, startProxy, type RunningProxy, type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

interface EndpointView {
  address: string;
  health: string;
  activeCheck?: string;
  lastCheckFailure?: string;
}

function endpoints(proxy: RunningProxy, cluster = 'app'): EndpointView[] {
  const c = proxy.proxy.snapshot.clusters.get(cluster)!.describe() as { endpoints: EndpointView[] };
  return c.endpoints;
}

function healthOf(proxy: RunningProxy, address: string): string | undefined {
  return endpoints(proxy).find((e) => e.address === address)?.health;
}

/** Who served each of `n` requests (x-served-by), one after another. */
async function servedBy(proxy: RunningProxy, n: number): Promise<string[]> {
  const who: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await httpGet(`${proxy.url()}/`);
    who.push(String(r.headers['x-served-by'] ?? r.status));
  }
  return who;
}

const fast = { intervalMs: 50, timeoutMs: 1_000, jitterPercent: 0, healthyThreshold: 2, unhealthyThreshold: 2 };

type HealthChecksInput = NonNullable<ConfigInput['clusters']>[number]['healthChecks'];

function config(
  addresses: string[],
  healthChecks: HealthChecksInput,
  protocol: 'auto' | 'http2' = 'auto',
): ConfigInput {
  return {
    admin: { address: '127.0.0.1:0' },
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
    clusters: [
      {
        name: 'app',
        protocol,
        discovery: { type: 'static', endpoints: addresses.map((address) => ({ address })) },
        healthChecks,
      },
    ],
  };
}

/** An HTTP upstream whose /health answers `health.status`; everything else 200 with x-served-by. */
async function upstreamWithHealth(name: string, health: { status: number; host?: string }): Promise<Upstream> {
  return startEchoUpstream(name, (req, res) => {
    if (req.url === '/health') {
      health.host = req.headers.host;
      res.writeHead(health.status).end();
      return;
    }
    res.writeHead(200, { 'x-served-by': name }).end(name);
  });
}

describe('HTTP health checks', () => {
  let proxy: RunningProxy | undefined;
  const upstreams: Upstream[] = [];
  afterEach(async () => {
    await proxy?.close();
    for (const u of upstreams.splice(0)) await u.close();
  });

  it('take an endpoint whose /health answers 500 out of rotation and bring it back once it answers 200', async () => {
    const sick = { status: 500 } as { status: number; host?: string };
    const a = await upstreamWithHealth('a', sick);
    const b = await upstreamWithHealth('b', { status: 200 });
    upstreams.push(a, b);
    proxy = await startProxy(config([a.address, b.address], { type: 'http', path: '/health', ...fast }));

    await waitFor(() => healthOf(proxy!, a.address) === 'unhealthy');
    expect(healthOf(proxy, b.address)).toBe('healthy');
    expect(endpoints(proxy).find((e) => e.address === a.address)?.lastCheckFailure).toBe('status 500');
    expect(sick.host).toBe('app'); // the cluster's service name as Host
    expect(new Set(await servedBy(proxy, 20))).toEqual(new Set(['b']));

    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    expect(metrics).toMatch(/skein_health_checks_total\{cluster="app",result="failure"\} [1-9]/);
    expect(metrics).toContain('skein_endpoints_healthy{cluster="app"} 1');
    expect(metrics).toMatch(/service_mesh_health_checks_total\{destination_service="app",result="success"\} [1-9]/);

    sick.status = 200;
    await waitFor(() => healthOf(proxy!, a.address) === 'healthy');
    await waitForAsync(async () => (await servedBy(proxy!, 4)).includes('a'));
    const clusters = JSON.parse((await httpGet(`${proxy.adminUrl()}/clusters`)).body) as {
      clusters: { endpoints: EndpointView[] }[];
    };
    expect(clusters.clusters[0].endpoints.map((e) => e.health)).toEqual(['healthy', 'healthy']);
  });

  it('balance over every endpoint when too few pass (panic), and answer from the healthy subset otherwise', async () => {
    const sick = { status: 503 };
    const a = await upstreamWithHealth('a', sick);
    const b = await upstreamWithHealth('b', sick);
    const c = await upstreamWithHealth('c', { status: 200 });
    upstreams.push(a, b, c);
    proxy = await startProxy(config([a.address, b.address, c.address], { type: 'http', ...fast }));
    await waitFor(() => healthOf(proxy!, a.address) === 'unhealthy' && healthOf(proxy!, b.address) === 'unhealthy');
    // 1 of 3 healthy is under the 50% panic threshold: all three still get traffic.
    expect((proxy.proxy.snapshot.clusters.get('app')!.describe() as { panic: boolean }).panic).toBe(true);
    expect(new Set(await servedBy(proxy, 9))).toEqual(new Set(['a', 'b', 'c']));
  });
});

describe('HTTP health checks of a protocol: http2 cluster', () => {
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  it('go over h2c, which such endpoints may be the only thing they speak', async () => {
    const health = { status: 503, authority: '' };
    upstream = await startH2Upstream((stream, headers) => {
      health.authority = String(headers[':authority']);
      stream.respond({ ':status': headers[':path'] === '/health' ? health.status : 200 });
      stream.end();
    });
    proxy = await startProxy(config([upstream.address], { type: 'http', ...fast }, 'http2'));
    await waitFor(() => healthOf(proxy!, upstream!.address) === 'unhealthy');
    expect(health.authority).toBe('app');
    health.status = 200;
    await waitFor(() => healthOf(proxy!, upstream!.address) === 'healthy');
  });
});

describe('TCP health checks', () => {
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
  });

  it('find a closed port, and its endpoint gets no requests', async () => {
    upstream = await startEchoUpstream('live');
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const dead = `127.0.0.1:${closedPort}`;
    proxy = await startProxy(config([upstream.address, dead], { type: 'tcp', ...fast }));

    await waitFor(() => healthOf(proxy!, dead) === 'unhealthy');
    expect(endpoints(proxy).find((e) => e.address === dead)?.lastCheckFailure).toBe('ECONNREFUSED');
    expect(healthOf(proxy, upstream.address)).toBe('healthy');
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await httpGet(`${proxy.url()}/`)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
  });
});

describe('gRPC health checks', () => {
  let proxy: RunningProxy | undefined;
  let server: grpc.Server | undefined;
  afterEach(async () => {
    await proxy?.close();
    server?.forceShutdown();
  });

  it('follow grpc.health.v1 Check of a real grpc-js server: NOT_SERVING is unhealthy, SERVING healthy', async () => {
    const definition = protoLoader.loadSync(fileURLToPath(new URL('../fixtures/health.proto', import.meta.url)), {
      keepCase: true,
      enums: String,
    });
    const health = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
    };
    let status = 'NOT_SERVING';
    const asked: string[] = [];
    server = new grpc.Server();
    server.addService(health.grpc.health.v1.Health.service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        asked.push(call.request.service);
        cb(null, { status });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const address = `127.0.0.1:${port}`;
    proxy = await startProxy(config([address], { type: 'grpc', service: 'skein.test.Echo', ...fast }));

    await waitFor(() => healthOf(proxy!, address) === 'unhealthy');
    expect(endpoints(proxy)[0].lastCheckFailure).toBe('serving status 2');
    expect(asked[0]).toBe('skein.test.Echo');
    status = 'SERVING';
    await waitFor(() => healthOf(proxy!, address) === 'healthy');
  });
});
