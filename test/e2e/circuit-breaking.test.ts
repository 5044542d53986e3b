// Circuit breaking end to end: a cluster's thresholds refuse what is over them at once (503 UO, gRPC
// UNAVAILABLE) instead of queueing it, the pools hold at most maxPendingRequests waiting for a connection, and an
// endpoint that fails every request has its breaker opened (shown in /clusters and metrics), gets no traffic
// until openMs has passed, then a probe closes it again; its state outlives a reload that keeps the cluster.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echoClient, grpcError, type GrpcUpstream, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet, type HttpResult } from '../support/http-client.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

/** An HTTP/1.1 upstream that holds every request until release(). */
async function startHoldingUpstream(): Promise<Upstream & { held: number; release(): void }> {
  const waiting: (() => void)[] = [];
  const handler: http.RequestListener = (req, res) => {
    req.resume();
    waiting.push(() => res.end('done'));
  };
  const up = await startEchoUpstream('holding', handler);
  return {
    address: up.address,
    port: up.port,
    close: () => up.close(),
    get held() {
      return waiting.length;
    },
    release() {
      for (const answer of waiting.splice(0)) answer();
    },
  };
}

function cluster(address: string | string[], circuitBreakers: Record<string, unknown>, extra = {}) {
  const list = Array.isArray(address) ? address : [address];
  return {
    name: 'app',
    discovery: { type: 'static' as const, endpoints: list.map((a) => ({ address: a })) },
    circuitBreakers,
    ...extra,
  };
}

function config(clusters: ConfigInput['clusters'], idleTimeoutMs = 60_000): ConfigInput {
  return {
    service: 'web',
    admin: { address: '127.0.0.1:0' },
    // Retries off: the tests count what each endpoint's failures do to the client's requests.
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        idleTimeoutMs,
        stages: { retry: { maxRetries: 0 } },
        routes: [{ cluster: 'app' }],
      },
    ],
    clusters,
  };
}

async function metric(proxy: RunningProxy, series: string): Promise<number | undefined> {
  const text = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface EndpointView {
  address: string;
  breaker: { state: string; timesOpened: number } | null;
}
async function clusters(proxy: RunningProxy): Promise<{
  circuitBreakers: Record<string, unknown>;
  endpoints: EndpointView[];
}> {
  return JSON.parse((await httpGet(`${proxy.adminUrl()}/clusters`)).body).clusters[0];
}

const flagOf = (r: HttpResult) => r.headers['x-skein-flags'];

describe('cluster thresholds', () => {
  let proxy: RunningProxy | undefined;
  let upstream: (Upstream & { release(): void }) | undefined;
  let grpcUpstream: GrpcUpstream | undefined;
  afterEach(async () => {
    upstream?.release();
    await proxy?.close();
    await upstream?.close();
    await grpcUpstream?.close();
    proxy = upstream = grpcUpstream = undefined;
  });

  it('maxRequests 2: of 5 concurrent requests to a slow upstream, 3 get 503 UO at once, counted', async () => {
    const up = await startHoldingUpstream();
    upstream = up;
    const dir = mkdtempSync(join(tmpdir(), 'skein-breakers-'));
    const accessLog = join(dir, 'access.log');
    proxy = await startProxy({
      ...config([cluster(up.address, { maxRequests: 2 })]),
      telemetry: { accessLog: { enabled: true, path: accessLog } },
    });
    const results: HttpResult[] = [];
    const all = Array.from({ length: 5 }, () => httpGet(`${proxy!.url()}/`).then((r) => (results.push(r), r)));
    // The three over the limit are answered while the two admitted ones are still held upstream.
    await waitFor(() => results.length === 3 && up.held === 2);
    expect(results.map((r) => [r.status, flagOf(r)])).toEqual(Array(3).fill([503, 'UO']));
    expect(results[0].body).toContain('upstream overflow');
    const view = await clusters(proxy);
    expect(view.circuitBreakers).toMatchObject({ requests: 2, maxRequests: 2, overflows: { max_requests: 3 } });
    up.release();
    const done = await Promise.all(all);
    expect(done.filter((r) => r.status === 200)).toHaveLength(2);
    expect(await metric(proxy, 'skein_upstream_overflow_total{cluster="app",threshold="max_requests"}')).toBe(3);
    expect(await metric(proxy, 'skein_upstream_overflow_total{cluster="app",threshold="max_connections"}')).toBe(0);
    expect(
      await metric(
        proxy,
        'service_mesh_requests_total{reporter="source",source_service="web",destination_service="app",destination_version="unknown",response_code="503",grpc_status="",response_flag="UO"}',
      ),
    ).toBe(3);
    expect((await clusters(proxy)).circuitBreakers).toMatchObject({ requests: 0 });
    // The access log says why: flag UO on each refused request.
    const flags = await waitFor(() => {
      const lines = readFileSync(accessLog, 'utf8').trim().split('\n');
      return lines.length === 5 ? lines.map((l) => (JSON.parse(l) as { response_flags: string }).response_flags) : null;
    });
    expect(flags.sort()).toEqual(['-', '-', 'UO', 'UO', 'UO']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('maxRequests over gRPC: the call over the limit ends UNAVAILABLE', async () => {
    const held: (() => void)[] = [];
    grpcUpstream = await startGrpcUpstream({
      Unary(call, callback) {
        held.push(() => callback(null, { message: call.request.message, index: 0 }));
      },
    });
    proxy = await startProxy(config([cluster(grpcUpstream.address, { maxRequests: 1 })]));
    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    try {
      const first = unary(client, { message: 'first' });
      await waitFor(() => held.length === 1);
      const err = await grpcError(unary(client, { message: 'second' }));
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
      expect(err.details).toContain('upstream overflow');
      held[0]();
      expect((await first).message).toBe('first');
    } finally {
      client.close();
    }
  });

  it('maxConnections 1 and maxPendingRequests 1: one request waits for the connection, the next gets UO', async () => {
    const up = await startHoldingUpstream();
    upstream = up;
    proxy = await startProxy(config([cluster(up.address, { maxConnections: 1, maxPendingRequests: 1 })]));
    const results: HttpResult[] = [];
    const all = Array.from({ length: 3 }, () => httpGet(`${proxy!.url()}/`).then((r) => (results.push(r), r)));
    await waitFor(() => results.length === 1 && up.held === 1);
    expect([results[0].status, flagOf(results[0])]).toEqual([503, 'UO']);
    expect((await clusters(proxy)).circuitBreakers).toMatchObject({
      connections: 1,
      pendingRequests: 1,
      overflows: { max_pending_requests: 1 },
    });
    // The waiting request goes out on the same connection once the first one is answered.
    up.release();
    await waitFor(() => up.held === 1);
    up.release();
    const done = await Promise.all(all);
    expect(done.filter((r) => r.status === 200)).toHaveLength(2);
    expect((await clusters(proxy)).circuitBreakers).toMatchObject({ connections: 1, pendingRequests: 0 });
    expect(await metric(proxy, 'skein_upstream_overflow_total{cluster="app",threshold="max_pending_requests"}')).toBe(
      1,
    );
  });

  it('HTTP/2: a session is a connection; a request for another endpoint waits for one to close, or gets UO', async () => {
    const held: (() => void)[] = [];
    const servers = [
      await startGrpcUpstream({
        Unary(call, callback) {
          held.push(() => callback(null, { message: `a:${call.request.message}`, index: 0 }));
        },
      }),
      await startGrpcUpstream({
        Unary(call, callback) {
          callback(null, { message: `b:${call.request.message}`, index: 0 });
        },
      }),
    ];
    grpcUpstream = { address: '', port: 0, close: async () => servers.forEach((s) => void s.close()) };
    proxy = await startProxy(
      config([
        cluster(
          servers.map((s) => s.address),
          { maxConnections: 1, maxPendingRequests: 1 },
          { timeouts: { connectMs: 1000, requestMs: 15000, idleMs: 200 } },
        ),
      ]),
    );
    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    try {
      // Round robin from an unknown start: call until one is held by server a (its session is the one slot).
      const calls: Promise<{ message: string }>[] = [];
      while (held.length === 0) {
        const call = unary(client, { message: String(calls.length) });
        calls.push(call);
        if (held.length === 0) await Promise.race([call, waitFor(() => held.length > 0).catch(() => {})]);
      }
      // Round robin: b next, which has no session, and there is no slot: the call waits (pending). Then a
      // (its session is open: no slot needed), then b again: the pending limit is reached, so it is refused.
      const waiting = unary(client, { message: 'waits' });
      await waitForAsync(async () => (await clusters(proxy!)).circuitBreakers.pendingRequests === 1);
      const second = unary(client, { message: 'second' });
      await waitFor(() => held.length === 2);
      const refused = await grpcError(unary(client, { message: 'refused' }));
      expect(refused.code).toBe(grpc.status.UNAVAILABLE);
      expect(refused.details).toContain('upstream overflow');
      // a answers; its idle session closes after idleMs and the slot goes to the call waiting for b.
      for (const answer of held) answer();
      expect((await second).message).toBe('a:second');
      expect((await waiting).message).toBe('b:waits');
      expect((await clusters(proxy)).circuitBreakers).toMatchObject({
        pendingRequests: 0,
        overflows: { max_pending_requests: 1 },
      });
    } finally {
      client.close();
    }
  });

  it('has Envoy defaults when circuitBreakers is not configured', async () => {
    upstream = Object.assign(await startEchoUpstream(), { release() {} });
    proxy = await startProxy(
      config([{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream.address }] } }]),
    );
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(200);
    expect((await clusters(proxy)).circuitBreakers).toMatchObject({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      maxRetries: 3,
    });
  });
});

describe('endpoint breakers', () => {
  let proxy: RunningProxy | undefined;
  const upstreams: Upstream[] = [];
  afterEach(async () => {
    await proxy?.close();
    for (const u of upstreams.splice(0)) await u.close();
    proxy = undefined;
  });

  /** An upstream answering 503 while `failing.on`, else 200; every answer says which server it was. */
  async function flaky(name: string, failing: { on: boolean }): Promise<Upstream> {
    const up = await startEchoUpstream(name, (req, res) => {
      req.resume();
      res.writeHead(failing.on ? 503 : 200, { 'x-served-by': name });
      res.end(name);
    });
    upstreams.push(up);
    return up;
  }

  const endpointBreaker = { consecutiveFailures: 3, failureRatePercent: 0, openMs: 300 };

  it('opens on the failing endpoint, sends traffic to the other, probes after openMs and closes', async () => {
    const failing = { on: true };
    const bad = await flaky('bad', failing);
    const good = await flaky('good', { on: false });
    const cfg = config([cluster([bad.address, good.address], { endpoint: { ...endpointBreaker, openMs: 60_000 } })]);
    proxy = await startProxy(cfg);
    const served = async (n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await httpGet(`${proxy!.url()}/`)).body);
      return out;
    };
    // Round robin: every other request reaches the bad endpoint; its third 503 in a row opens its breaker.
    expect((await served(6)).filter((s) => s === 'bad')).toHaveLength(3);
    const badView = () => clusters(proxy!).then((c) => c.endpoints.find((e) => e.address === bad.address)!);
    expect((await badView()).breaker).toMatchObject({ state: 'open', timesOpened: 1 });
    expect(await served(10)).toEqual(Array(10).fill('good'));
    expect(await metric(proxy, `skein_circuit_breaker_state{cluster="app",endpoint="${bad.address}"}`)).toBe(2);
    expect(await metric(proxy, `skein_circuit_breaker_state{cluster="app",endpoint="${good.address}"}`)).toBe(0);
    expect(await metric(proxy, 'service_mesh_circuit_breaker_open{destination_service="app"}')).toBe(1);

    // A reload that keeps the cluster's config (only the listener changes) keeps the breaker open.
    await proxy.proxy.apply(parseConfig(config(cfg.clusters, 30_000)));
    expect((await badView()).breaker).toMatchObject({ state: 'open' });
    expect(await served(4)).toEqual(Array(4).fill('good'));

    // The endpoint recovers; with a short openMs (a new cluster config: a fresh breaker) it is opened again,
    // then after openMs one probe reaches it, succeeds and closes the breaker.
    await proxy.proxy.apply(parseConfig(config([cluster([bad.address, good.address], { endpoint: endpointBreaker })])));
    expect((await served(6)).filter((s) => s === 'bad')).toHaveLength(3);
    expect((await badView()).breaker).toMatchObject({ state: 'open' });
    failing.on = false;
    await waitForAsync(async () => (await badView()).breaker?.state === 'half-open');
    expect(await metric(proxy, `skein_circuit_breaker_state{cluster="app",endpoint="${bad.address}"}`)).toBe(1);
    const after = await served(6);
    expect(after.filter((s) => s === 'bad').length).toBeGreaterThanOrEqual(2);
    expect((await badView()).breaker).toMatchObject({ state: 'closed' });
    expect(await metric(proxy, 'service_mesh_circuit_breaker_open{destination_service="app"}')).toBe(0);
  });

  it('answers 503 UO at once when every endpoint is open, and a failed probe opens it again', async () => {
    const failing = { on: true };
    const only = await flaky('only', failing);
    proxy = await startProxy(config([cluster(only.address, { endpoint: { ...endpointBreaker, openMs: 200 } })]));
    for (let i = 0; i < 3; i++) expect((await httpGet(`${proxy.url()}/`)).status).toBe(503);
    const refused = await httpGet(`${proxy.url()}/`);
    expect([refused.status, flagOf(refused)]).toEqual([503, 'UO']);
    expect(refused.body).toContain('upstream overflow');
    // Half-open: the probe reaches the endpoint, still failing, and the breaker opens again.
    const probe = await waitForAsync(async () => {
      const r = await httpGet(`${proxy!.url()}/`);
      return r.headers['x-served-by'] === 'only' ? r : undefined;
    });
    expect(probe.status).toBe(503);
    const view = await clusters(proxy);
    expect(view.endpoints[0].breaker).toMatchObject({ timesOpened: 2 });
  });
});
