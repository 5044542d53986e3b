// The metrics as a real Prometheus sees them: Debian's `prometheus` binary scrapes the proxy's admin /metrics
// every second while requests of known kinds go through, and PromQL over what it stored returns exactly the
// counts sent — successes, a 503 with no healthy upstream (UH), a 404 with no route (NR), gRPC calls that end OK
// or UNAVAILABLE — sliced by the contract's labels, and a duration histogram that histogram_quantile can read.
// Across a hop (outbound proxy → inbound proxy → app) each side counts the call under its own reporter, and the
// proxy-overhead histogram counts every request once with less time than the request took.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { echoClient, type GrpcUpstream, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { type RunningPrometheus, startPrometheus, type VectorSample } from '../support/prometheus.ts';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { sleep, waitForAsync } from '../support/wait-for.ts';

/** Orders query results by response code, then gRPC status. */
function sliceKey(s: VectorSample): string {
  return `${s.metric.response_code}/${s.metric.grpc_status ?? ''}`;
}

/** The single value of an instant query that must return one sample (0 when it returns none). */
async function scalar(prometheus: RunningPrometheus, promql: string): Promise<number> {
  const result = await prometheus.query(promql);
  if (result.length > 1) throw new Error(`${promql}: ${result.length} samples`);
  return result.length === 0 ? 0 : Number(result[0].value[1]);
}

describe('Prometheus scraping the proxy', () => {
  let dir: string | undefined;
  let prometheus: RunningPrometheus | undefined;
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;
  let grpcUpstream: GrpcUpstream | undefined;
  let client: grpc.Client | undefined;

  afterEach(async () => {
    client?.close();
    await prometheus?.stop();
    await proxy?.close();
    await upstream?.close();
    await grpcUpstream?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    prometheus = proxy = upstream = grpcUpstream = client = dir = undefined;
  });

  it('counts exactly the requests sent, by response code, flag and destination, in PromQL', async () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-prometheus-'));
    writeFileSync(join(dir, 'empty.json'), '[]\n');
    upstream = await startEchoUpstream('app');
    grpcUpstream = await startGrpcUpstream({
      Unary(call, callback) {
        if (call.request.message === 'fail') callback({ code: grpc.status.UNAVAILABLE, details: 'down for the test' });
        else callback(null, { message: call.request.message, index: 0 });
      },
    });
    proxy = await startProxy(
      {
        service: 'web',
        admin: { address: '127.0.0.1:0' },
        listeners: [
          {
            name: 'outbound',
            address: '127.0.0.1:0',
            routes: [
              { name: 'to-grpc', match: { grpc: true }, cluster: 'echo' },
              { name: 'to-drained', match: { pathPrefix: '/drained' }, cluster: 'drained' },
              { name: 'to-app', match: { pathPrefix: '/app' }, cluster: 'app' },
            ],
          },
        ],
        clusters: [
          {
            name: 'app',
            service: 'backend',
            discovery: { type: 'static', endpoints: [{ address: upstream.address, labels: { version: 'v2' } }] },
          },
          {
            name: 'echo',
            service: 'echo-grpc',
            discovery: { type: 'static', endpoints: [{ address: grpcUpstream.address, labels: { version: 'v1' } }] },
          },
          { name: 'drained', service: 'payments', discovery: { type: 'file', path: 'empty.json' } },
        ],
      },
      { baseDir: dir },
    );
    const prom = (prometheus = await startPrometheus(dir, [`127.0.0.1:${proxy.proxy.adminPort}`]));
    await waitForAsync(async () => (await scalar(prom, 'up{job="skein"}')) === 1, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\nprometheus output:\n${prom.output()}`);
    });

    // Traffic in batches, so scrapes land while it flows: per batch 10 successes, a UH, an NR, and gRPC calls:
    // 2 OK and 1 UNAVAILABLE (HTTP 200 with grpc-status 14).
    const BATCHES = 5;
    const grpcClient = echoClient(`127.0.0.1:${proxy.port()}`);
    client = grpcClient;
    const call = async (message: string) => {
      try {
        await unary(grpcClient, { message });
        return grpc.status.OK;
      } catch (err) {
        return (err as grpc.ServiceError).code;
      }
    };
    const get = async (path: string, status: number) => {
      const res = await fetch(`${proxy!.url()}${path}`);
      await res.arrayBuffer();
      expect(res.status, path).toBe(status);
    };
    for (let batch = 0; batch < BATCHES; batch++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => get(`/app/item/${batch * 10 + i}`, 200)));
      await get(`/drained/${batch}`, 503);
      await get(`/nowhere/${batch}`, 404);
      expect(await Promise.all([call('a'), call('b'), call('fail')])).toEqual([
        grpc.status.OK,
        grpc.status.OK,
        grpc.status.UNAVAILABLE,
      ]);
      await sleep(400);
    }

    const total = BATCHES * 15;
    await waitForAsync(async () => (await scalar(prom, 'sum(service_mesh_requests_total)')) === total, 20_000);
    expect(await scalar(prom, 'sum(service_mesh_requests_total{response_code="200"})')).toBe(BATCHES * 13);
    // The error-rate alert's numerator: 5xx, or a gRPC status that maps to 5xx.
    expect(
      await scalar(
        prom,
        'sum(service_mesh_requests_total{response_code=~"5.."}) + ' +
          'sum(service_mesh_requests_total{response_code!~"5..", grpc_status=~"2|4|13|14|15"})',
      ),
    ).toBe(BATCHES * 2);
    const bySlice = await prom.query(
      'sum by (source_service, destination_service, destination_version, response_code, grpc_status, response_flag) ' +
        '(service_mesh_requests_total)',
    );
    expect(
      bySlice
        .sort((a, b) => sliceKey(a).localeCompare(sliceKey(b)))
        .map((s) => ({ ...s.metric, count: Number(s.value[1]) })),
    ).toEqual([
      {
        source_service: 'web',
        destination_service: 'backend',
        destination_version: 'v2',
        response_code: '200',
        count: BATCHES * 10, // no response_flag, no grpc_status: Prometheus drops empty label values
      },
      {
        source_service: 'web',
        destination_service: 'echo-grpc',
        destination_version: 'v1',
        response_code: '200',
        grpc_status: '0',
        count: BATCHES * 2,
      },
      {
        source_service: 'web',
        destination_service: 'echo-grpc',
        destination_version: 'v1',
        response_code: '200',
        grpc_status: '14',
        response_flag: 'URX', // retried twice by the default policy, each answered UNAVAILABLE
        count: BATCHES,
      },
      {
        source_service: 'web',
        destination_service: 'unknown',
        destination_version: 'unknown',
        response_code: '404',
        response_flag: 'NR',
        count: BATCHES,
      },
      {
        source_service: 'web',
        destination_service: 'payments',
        destination_version: 'unknown',
        response_code: '503',
        response_flag: 'UH',
        count: BATCHES,
      },
    ]);
    expect(await scalar(prom, 'sum(service_mesh_retries_total{destination_service="echo-grpc"})')).toBe(BATCHES * 2);
    // An empty label value and an absent label are the same series in PromQL.
    expect(await scalar(prom, 'sum(service_mesh_requests_total{grpc_status=""})')).toBe(BATCHES * 12);

    expect(await scalar(prom, 'sum(service_mesh_request_duration_seconds_count)')).toBe(total);
    expect(await scalar(prom, 'sum(service_mesh_request_duration_seconds_bucket{le="+Inf"})')).toBe(total);
    // The latency alert's aggregation, over the cumulative buckets: a finite p95 for the service.
    const p95 = await prom.query(
      'histogram_quantile(0.95, sum by (destination_service, le) (service_mesh_request_duration_seconds_bucket{destination_service="backend"}))',
    );
    expect(p95).toHaveLength(1);
    expect(Number(p95[0].value[1])).toBeGreaterThan(0);
    expect(Number(p95[0].value[1])).toBeLessThanOrEqual(10);
    // The other families were scraped too.
    expect(await scalar(prom, 'sum(skein_downstream_connections_total)')).toBeGreaterThan(0);
    expect(await scalar(prom, 'sum(service_mesh_response_bytes_total{destination_service="backend"})')).toBeGreaterThan(
      0,
    );
  }, 90_000);

  it('counts a call through two proxies once per reporter side, and the overhead of each request once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'skein-prometheus-'));
    upstream = await startEchoUpstream('backend-app');
    const inbound = await startProxy({
      service: 'backend',
      admin: { address: '127.0.0.1:0' },
      listeners: [
        { name: 'inbound', direction: 'inbound', address: '127.0.0.1:0', routes: [{ name: 'local', cluster: 'app' }] },
      ],
      clusters: [
        {
          name: 'app',
          service: 'backend',
          discovery: { type: 'static', endpoints: [{ address: upstream.address, labels: { version: 'v1' } }] },
        },
      ],
    });
    try {
      proxy = await startProxy({
        service: 'web',
        admin: { address: '127.0.0.1:0' },
        listeners: [{ name: 'outbound', address: '127.0.0.1:0', routes: [{ name: 'all', cluster: 'backend' }] }],
        clusters: [
          {
            name: 'backend',
            service: 'backend',
            discovery: {
              type: 'static',
              endpoints: [{ address: `127.0.0.1:${inbound.port()}`, labels: { version: 'v1' } }],
            },
          },
        ],
      });
      const prom = (prometheus = await startPrometheus(dir, [
        `127.0.0.1:${proxy.proxy.adminPort}`,
        `127.0.0.1:${inbound.proxy.adminPort}`,
      ]));
      await waitForAsync(async () => (await scalar(prom, 'sum(up{job="skein"})')) === 2, 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\nprometheus output:\n${prom.output()}`);
      });

      const BATCHES = 4;
      const PER_BATCH = 10;
      for (let batch = 0; batch < BATCHES; batch++) {
        await Promise.all(
          Array.from({ length: PER_BATCH }, async (_, i) => {
            const res = await fetch(`${proxy!.url()}/orders/${batch * PER_BATCH + i}`);
            await res.arrayBuffer();
            expect(res.status).toBe(200);
          }),
        );
        await sleep(400); // scrapes land between batches
      }
      const sent = BATCHES * PER_BATCH;
      await waitForAsync(async () => (await scalar(prom, 'sum(service_mesh_requests_total)')) === 2 * sent, 20_000);

      const byReporter = await prom.query(
        'sum by (reporter, source_service, destination_service) (service_mesh_requests_total)',
      );
      expect(
        byReporter
          .sort((a, b) => a.metric.reporter.localeCompare(b.metric.reporter))
          .map((s) => ({ ...s.metric, count: Number(s.value[1]) })),
      ).toEqual([
        { reporter: 'destination', source_service: 'web', destination_service: 'backend', count: sent },
        { reporter: 'source', source_service: 'web', destination_service: 'backend', count: sent },
      ]);
      // What the shipped alerts and dashboard read: one side, each call once.
      expect(await scalar(prom, 'sum(service_mesh_requests_total{reporter="source"})')).toBe(sent);
      expect(await scalar(prom, 'sum(service_mesh_request_duration_seconds_count{reporter="source"})')).toBe(sent);

      // The proxy's own time: once per request per listener, positive, and less than the requests took.
      for (const [listener, reporter] of [
        ['outbound', 'source'],
        ['inbound', 'destination'],
      ]) {
        expect(await scalar(prom, `sum(skein_proxy_overhead_seconds_count{listener="${listener}"})`), listener).toBe(
          sent,
        );
        const overhead = await scalar(prom, `sum(skein_proxy_overhead_seconds_sum{listener="${listener}"})`);
        const durations = await scalar(prom, `sum(service_mesh_request_duration_seconds_sum{reporter="${reporter}"})`);
        expect(overhead, listener).toBeGreaterThan(0);
        expect(overhead, listener).toBeLessThan(durations);
      }
      // CPU per request: scraped while requests flowed, a positive figure below a second.
      const cpu = await scalar(prom, 'max(max_over_time(skein_proxy_cpu_seconds_per_request[5m]))');
      expect(cpu).toBeGreaterThan(0);
      expect(cpu).toBeLessThan(1);
      // No family that nothing feeds; every cluster has circuit-breaking thresholds, none reached here. The
      // outbound listener retries by default, so its family is there, and no call needed a retry.
      expect(await prom.query('{__name__=~"service_mesh_(rate_limited|certificate|outlier|health).*"}')).toEqual([]);
      expect((await prom.query('service_mesh_retries_total')).length).toBeGreaterThan(0);
      expect(await scalar(prom, 'sum(service_mesh_retries_total)')).toBe(0);
      expect(await scalar(prom, 'max(service_mesh_circuit_breaker_open)')).toBe(0);
    } finally {
      await inbound.close();
    }
  }, 90_000);
});
