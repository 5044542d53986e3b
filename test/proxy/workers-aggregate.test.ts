// Merging the figures of `skein proxy --workers N`: what each worker's ProxyStats gives (sent through JSON, as the
// IPC channel does) adds up to the whole process's; gauges combine by their own rule; a missing worker is named.
import { describe, expect, it } from 'vitest';
import { ProxyStats } from '../../proxy/stats.ts';
import {
  type ClustersView,
  GAUGE_AGGREGATORS,
  type MetricFamilies,
  mergeClusters,
  mergeMetrics,
  WorkerFiguresMemory,
} from '../../proxy/workers-aggregate.ts';
import type { RequestMetricsInput } from '../../src/telemetry/metrics.ts';
import type { OverheadInput } from '../../src/telemetry/metrics-overhead.ts';

const ok: RequestMetricsInput & OverheadInput = {
  direction: 'outbound',
  sourceService: 'web',
  destinationService: 'api',
  destinationVersion: 'v1',
  status: 200,
  grpcStatus: -1,
  isGrpc: false,
  flag: '',
  startMs: 1000,
  endMs: 1003,
  upstreamStartMs: 1000.5,
  upstreamHeadersMs: 1002,
  requestBytes: 10,
  responseBytes: 100,
};

/** A worker's families as the primary receives them: through JSON, like the cluster IPC channel. */
async function overIpc(stats: ProxyStats): Promise<MetricFamilies> {
  return JSON.parse(JSON.stringify(await stats.metricsAsJSON())) as MetricFamilies;
}

/** The value of the one sample line `name{labels}` in Prometheus text (labels as printed, in order). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function sumLines(text: string, family: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${family}{`))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' '))), 0);
}

function newWorker(): ProxyStats {
  return new ProxyStats({ processMetrics: false });
}

describe('merging workers\u2019 metrics', () => {
  it('sums request counters, histograms and connection gauges; takes the highest config version', async () => {
    const [a, b] = [newWorker(), newWorker()];
    for (let i = 0; i < 3; i++) a.onRequestEnd('main', ok);
    for (let i = 0; i < 4; i++) b.onRequestEnd('main', ok);
    b.onRequestEnd('main', { ...ok, status: 503, flag: 'UH' });
    a.downstreamConnections('main', 2);
    b.downstreamConnections('main', 1);
    a.configVersion = 3;
    b.configVersion = 4;
    a.setConfigPushState('synced');
    b.setConfigPushState('rejected');

    const text = await mergeMetrics([await overIpc(a), await overIpc(b)], { asked: 2, missing: [] });
    const group = 'reporter="source",source_service="web",destination_service="api",destination_version="v1"';
    expect(
      value(text, `service_mesh_requests_total{${group},response_code="200",grpc_status="",response_flag=""}`),
    ).toBe(7);
    expect(
      value(text, `service_mesh_requests_total{${group},response_code="503",grpc_status="",response_flag="UH"}`),
    ).toBe(1);
    expect(value(text, `service_mesh_request_duration_seconds_count{${group},response_flag=""}`)).toBe(7);
    expect(value(text, `service_mesh_request_duration_seconds_bucket{le="0.005",${group},response_flag=""}`)).toBe(7);
    expect(value(text, `service_mesh_request_bytes_total{${group}}`)).toBe(80);
    expect(value(text, 'skein_downstream_connections_active{listener="main"}')).toBe(3);
    expect(value(text, 'skein_downstream_connections_total{listener="main"}')).toBe(3);
    expect(value(text, 'skein_config_version')).toBe(4);
    // One-hot per worker stays 0/1 across them: 1 on every state some worker is in.
    expect(value(text, 'skein_config_push_state{state="synced"}')).toBe(1);
    expect(value(text, 'skein_config_push_state{state="rejected"}')).toBe(1);
    expect(value(text, 'skein_config_push_state{state="connecting"}')).toBe(0);
    expect(value(text, 'skein_scrape_workers{result="answered"}')).toBe(2);
    expect(value(text, 'skein_scrape_workers{result="stale"}')).toBe(0);
    expect(value(text, 'skein_scrape_workers{result="missing"}')).toBe(0);
    expect(text).not.toContain('# skein:');
  });

  it('answers with the workers that answered and says which one is missing and why', async () => {
    const a = newWorker();
    a.onRequestEnd('main', ok);
    const text = await mergeMetrics([await overIpc(a)], {
      asked: 2,
      missing: [{ pid: 4242, reason: 'no answer within 3000 ms' }],
    });
    expect(text).toContain('# skein: worker pid 4242 missing from this scrape: no answer within 3000 ms');
    expect(value(text, 'skein_scrape_workers{result="answered"}')).toBe(1);
    expect(value(text, 'skein_scrape_workers{result="missing"}')).toBe(1);
  });

  it('keeps counters from going backwards: a late worker\u2019s last figures stand in, an exited one\u2019s counts stay', async () => {
    const memory = new WorkerFiguresMemory();
    const [a, b] = [newWorker(), newWorker()];
    for (let i = 0; i < 3; i++) a.onRequestEnd('main', ok);
    for (let i = 0; i < 5; i++) b.onRequestEnd('main', ok);
    b.downstreamConnections('main', 1);
    memory.answered(1, await overIpc(a));
    memory.answered(2, await overIpc(b));
    const requests = (text: string) =>
      value(
        text,
        'service_mesh_requests_total{reporter="source",source_service="web",destination_service="api",destination_version="v1",response_code="200",grpc_status="",response_flag=""}',
      );

    // Worker 2 is late: its last figures stand in, so the total is not 3.
    a.onRequestEnd('main', ok);
    const late = await mergeMetrics([await overIpc(a), memory.lastOf(2)!, await memory.retiredFamilies()], {
      asked: 2,
      missing: [{ pid: 2002, reason: 'no answer within 3000 ms', stale: true }],
    });
    expect(requests(late)).toBe(9);
    expect(value(late, 'skein_scrape_workers{result="stale"}')).toBe(1);
    expect(late).toContain('# skein: worker pid 2002 missing from this scrape: no answer within 3000 ms; its figures');

    // Worker 2 exits and a fresh one takes its place: its 5 requests stay counted, its open connection does not.
    memory.exited(2);
    expect(memory.lastOf(2)).toBeUndefined();
    const fresh = newWorker();
    fresh.onRequestEnd('main', ok);
    const after = await mergeMetrics([await overIpc(a), await overIpc(fresh), await memory.retiredFamilies()], {
      asked: 2,
      missing: [],
    });
    expect(requests(after)).toBe(4 + 1 + 5);
    expect(value(after, 'skein_downstream_connections_active{listener="main"}')).toBeUndefined();
    expect(sumLines(after, 'service_mesh_request_duration_seconds_count')).toBe(10);
  });

  it('has a cross-worker rule for every gauge the proxy registers', async () => {
    const stats = new ProxyStats({ processMetrics: true });
    const gauges = (await stats.metricsAsJSON())
      .filter((f) => String(f.type) === 'gauge' && !/^(process|nodejs)_/.test(f.name))
      .map((f) => f.name);
    expect(gauges.length).toBeGreaterThan(0);
    expect(gauges.filter((name) => GAUGE_AGGREGATORS[name] === undefined)).toEqual([]);
  });
});

describe('merging workers\u2019 /clusters', () => {
  const endpoint = (address: string, requestsTotal: number, activeRequests: number) => ({
    address,
    weight: 1,
    health: 'healthy',
    activeRequests,
    requestsTotal,
    failuresTotal: requestsTotal > 2 ? 1 : 0,
    connections: 1,
  });
  const view = (version: number, endpoints: ReturnType<typeof endpoint>[]): ClustersView => ({
    version,
    clusters: [{ name: 'app', service: 'app', lb: 'round-robin', endpoints }],
  });

  it('sums each endpoint\u2019s counts across workers and keeps its other fields', () => {
    const merged = mergeClusters(
      [
        view(2, [endpoint('10.0.0.1:80', 5, 1), endpoint('10.0.0.2:80', 2, 0)]),
        view(3, [endpoint('10.0.0.1:80', 4, 2), endpoint('10.0.0.3:80', 1, 0)]),
      ],
      { asked: 2, missing: [] },
    );
    expect(merged.version).toBe(3);
    expect(merged.workers).toEqual({ asked: 2, answered: 2, missing: [] });
    expect(merged.clusters).toEqual([
      {
        name: 'app',
        service: 'app',
        lb: 'round-robin',
        endpoints: [
          { ...endpoint('10.0.0.1:80', 9, 3), failuresTotal: 2, connections: 2 },
          endpoint('10.0.0.2:80', 2, 0),
          endpoint('10.0.0.3:80', 1, 0),
        ],
      },
    ]);
  });

  it('sums each cluster’s circuit-breaking counts and overflows; each worker has the same thresholds', () => {
    const limits = (requests: number, overflows: number) => ({
      connections: 1,
      maxConnections: 1024,
      requests,
      maxRequests: 2,
      overflows: { max_requests: overflows, max_connections: 0 },
    });
    const withLimits = (requests: number, overflows: number): ClustersView => ({
      version: 1,
      clusters: [{ name: 'app', circuitBreakers: limits(requests, overflows), endpoints: [] }],
    });
    const merged = mergeClusters([withLimits(2, 3), withLimits(1, 4)], { asked: 2, missing: [] });
    expect(merged.clusters[0].circuitBreakers).toEqual({
      connections: 2,
      maxConnections: 1024,
      requests: 3,
      maxRequests: 2,
      overflows: { max_requests: 7, max_connections: 0 },
    });
  });

  it('sums each cluster’s retry budget window; each worker has the same settings', () => {
    const budget = (requests: number, retries: number) => ({
      retryRatio: 0.2,
      minRetriesPerSecond: 10,
      ttlMs: 10_000,
      requests,
      retries,
      available: 100 + requests * 0.2 - retries,
      refused: retries,
    });
    const withBudget = (requests: number, retries: number): ClustersView => ({
      version: 1,
      clusters: [{ name: 'app', retryBudget: budget(requests, retries), endpoints: [] }],
    });
    const merged = mergeClusters([withBudget(50, 2), withBudget(100, 3)], { asked: 2, missing: [] });
    expect(merged.clusters[0].retryBudget).toEqual({
      retryRatio: 0.2,
      minRetriesPerSecond: 10,
      ttlMs: 10_000,
      requests: 150,
      retries: 5,
      available: 225,
      refused: 5,
    });
  });

  it('names the workers that did not answer', () => {
    const merged = mergeClusters([view(1, [endpoint('10.0.0.1:80', 5, 0)])], {
      asked: 2,
      missing: [{ pid: 77, reason: 'exited' }],
    });
    expect(merged.workers).toEqual({ asked: 2, answered: 1, missing: [{ pid: 77, reason: 'exited' }] });
  });
});
