// Request metrics as Prometheus sees them: finished requests go into ProxyStats, the text exposition comes out and
// is parsed back into samples. Checks the contract of manifests/README.md (names, labels, buckets, 499 for DC,
// grpc_status), that label cardinality stays bounded whatever clients send, and that disabling metrics stops the
// per-request families.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ProxyStats } from '../../proxy/stats.ts';
import {
  DURATION_BUCKETS_S,
  OTHER,
  RequestMetrics,
  type RequestMetricsInput,
  UNKNOWN,
} from '../../src/telemetry/metrics.ts';
import type { RequestRecord } from '../../src/telemetry/types.ts';
import type { OverheadInput } from '../../src/telemetry/metrics-overhead.ts';
import { readContract, readPendingFamilies } from '../manifests/metrics-contract.ts';
import { Registry } from 'prom-client';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text format's sample lines (comments and blank lines skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(stats: ProxyStats): Promise<Sample[]> {
  return parseExposition(await stats.render());
}

function only(samples: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return only(samples, name, match).reduce((acc, s) => acc + s.value, 0);
}

type StatsInput = RequestMetricsInput & OverheadInput;

const ok: StatsInput = {
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
  upstreamStartMs: 1000.1,
  upstreamHeadersMs: 1002.9,
  requestBytes: 10,
  responseBytes: 100,
};

/** A whole RequestRecord, as the proxy's RequestContext presents it. */
function fullRecord(over: Partial<RequestRecord>): RequestRecord {
  return {
    listenerName: 'main',
    protocol: 'HTTP/1.1',
    method: 'GET',
    authority: 'api.local',
    path: '/',
    scheme: 'http',
    remoteAddress: '127.0.0.1',
    userAgent: 'test',
    requestId: 'id',
    upstreamHost: '10.0.0.1:8080',
    clusterName: 'api',
    routeName: 'all',
    traceId: '',
    spanId: '',
    ...ok,
    ...over,
  };
}

function newStats(opts: { metricsEnabled?: boolean } = {}): ProxyStats {
  return new ProxyStats({ processMetrics: false, ...opts });
}

describe('request metrics', () => {
  it('counts requests by source, destination, version, response code, gRPC status and flag', async () => {
    const stats = newStats();
    for (let i = 0; i < 5; i++) stats.onRequestEnd('main', ok);
    for (let i = 0; i < 2; i++) stats.onRequestEnd('main', { ...ok, destinationVersion: 'v2', status: 500 });
    stats.onRequestEnd('main', { ...ok, destinationService: 'db', status: 503, flag: 'UH', responseBytes: 19 });
    stats.onRequestEnd('main', { ...ok, sourceService: 'batch', isGrpc: true, grpcStatus: 14 });
    const samples = await scrape(stats);
    expect(only(samples, 'service_mesh_requests_total').map((s) => [s.labels, s.value])).toEqual([
      [
        {
          reporter: 'source',
          source_service: 'web',
          destination_service: 'api',
          destination_version: 'v1',
          response_code: '200',
          grpc_status: '',
          response_flag: '',
        },
        5,
      ],
      [expect.objectContaining({ destination_version: 'v2', response_code: '500', response_flag: '' }), 2],
      [expect.objectContaining({ destination_service: 'db', response_code: '503', response_flag: 'UH' }), 1],
      [expect.objectContaining({ source_service: 'batch', response_code: '200', grpc_status: '14' }), 1],
    ]);
    expect(sum(samples, 'service_mesh_request_bytes_total')).toBe(90);
    expect(sum(samples, 'service_mesh_response_bytes_total', { destination_service: 'db' })).toBe(19);
  });

  it('reports a downstream disconnect as 499 with flag DC, whatever status was set', async () => {
    const stats = newStats();
    stats.onRequestEnd('main', { ...ok, status: 0, flag: 'DC' });
    stats.onRequestEnd('main', { ...ok, status: 200, flag: 'DC' });
    const samples = await scrape(stats);
    expect(only(samples, 'service_mesh_requests_total').map((s) => [s.labels.response_code, s.value])).toEqual([
      ['499', 2],
    ]);
  });

  it('labels gRPC requests with their numeric status; others, and gRPC requests without one, with ""', async () => {
    const stats = newStats();
    const grpc = (grpcStatus: number) => stats.onRequestEnd('main', { ...ok, isGrpc: true, grpcStatus });
    grpc(0);
    grpc(0);
    grpc(4);
    grpc(16);
    grpc(-1); // cut before the trailers
    grpc(99); // not a status: gRPC clients read it as UNKNOWN (2)
    stats.onRequestEnd('main', ok);
    const byStatus = Object.fromEntries(
      only(await scrape(stats), 'service_mesh_requests_total').map((s) => [s.labels.grpc_status, s.value]),
    );
    expect(byStatus).toEqual({ '0': 2, '4': 1, '16': 1, '': 2, '2': 1 });
  });

  it('puts durations in the contract buckets, cumulative, with +Inf, sum and count per flag', async () => {
    const stats = newStats();
    const took = (ms: number, flag = '') => stats.onRequestEnd('main', { ...ok, endMs: ok.startMs + ms, flag });
    took(0.4);
    took(1); // exactly on a bound: "less than or equal"
    took(3);
    took(1000);
    took(12_000);
    took(20, 'UT');
    const samples = await scrape(stats);
    const buckets = only(samples, 'service_mesh_request_duration_seconds_bucket', { response_flag: '' });
    expect(buckets.map((s) => s.labels.le)).toEqual([...DURATION_BUCKETS_S.map(String), '+Inf']);
    expect(DURATION_BUCKETS_S).toContain(1);
    const at = (le: string) => buckets.find((s) => s.labels.le === le)?.value;
    expect([at('0.001'), at('0.0025'), at('0.005'), at('0.5'), at('1'), at('10'), at('+Inf')]).toEqual([
      2, 2, 3, 3, 4, 4, 5,
    ]);
    expect(sum(samples, 'service_mesh_request_duration_seconds_count', { response_flag: '' })).toBe(5);
    expect(sum(samples, 'service_mesh_request_duration_seconds_sum', { response_flag: '' })).toBeCloseTo(13.0044, 6);
    const ut = only(samples, 'service_mesh_request_duration_seconds_bucket', { response_flag: 'UT' });
    expect(ut.find((s) => s.labels.le === '0.01')?.value).toBe(0);
    expect(ut.find((s) => s.labels.le === '0.025')?.value).toBe(1);
    expect(Object.keys(ut[0].labels).sort()).toEqual(
      ['destination_service', 'destination_version', 'le', 'reporter', 'response_flag', 'source_service'].sort(),
    );
  });

  it('exports exactly the families and labels of the contract table for the proxy', async () => {
    const stats = newStats();
    // As the server does: the clusters it serves (every cluster has circuit-breaking thresholds).
    const api = {
      name: 'api',
      service: 'api',
      circuitOpen: false,
      hasEndpointBreakers: false,
      breakerStates: () => [],
    };
    stats.watchCircuitBreakers(() => [api]);
    stats.onRequestEnd('main', ok);
    // As the server does: every cluster's endpoint gauges, and the counters of a cluster that configures
    // health checks and outlier detection.
    stats.watchEndpoints(() => [{ name: 'api', health: { healthyCount: 2, ejectedCount: 0 } }]);
    stats.registerHealthChecks({ name: 'api', service: 'api' });
    stats.registerOutlierDetection({ name: 'api', service: 'api' });
    // As the server does once a listener has a rate limit, and once one retries.
    stats.registerRateLimits();
    stats.registerRetries();
    // As the server does once it has a mesh identity, and at each mTLS handshake.
    stats.setCertificateExpiry('spiffe://mesh.local/ns/default/sa/web', Date.now() + 86_400_000, Date.now());
    stats.mtlsHandshake('inbound', 'ok');
    const text = await stats.render();
    const samples = parseExposition(text);
    const proxyRows = readContract().filter((m) => m.from === 'proxy');
    expect(proxyRows.map((m) => m.name)).toContain('service_mesh_requests_total');
    for (const m of proxyRows) {
      expect(text, m.name).toContain(`# TYPE ${m.name} ${m.type}\n`);
      const name = m.type === 'histogram' ? `${m.name}_count` : m.name;
      const found = only(samples, name);
      expect(found.length, m.name).toBeGreaterThan(0);
      for (const s of found) expect(Object.keys(s.labels).sort(), m.name).toEqual([...m.labels].sort());
    }
  });

  it('labels what an outbound listener counts reporter="source" and an inbound one reporter="destination"', async () => {
    const stats = newStats();
    // One request web → api seen by both proxies of the hop (here one ProxyStats holds both listeners).
    stats.onRequestEnd('outbound', ok);
    stats.onRequestEnd('inbound', { ...ok, direction: 'inbound' });
    stats.onRequestEnd('inbound', { ...ok, direction: 'inbound', status: 500 });
    const samples = await scrape(stats);
    expect(sum(samples, 'service_mesh_requests_total', { reporter: 'source' })).toBe(1);
    expect(sum(samples, 'service_mesh_requests_total', { reporter: 'destination' })).toBe(2);
    expect(sum(samples, 'service_mesh_requests_total', { reporter: 'destination', response_code: '500' })).toBe(1);
    for (const family of [
      'service_mesh_request_duration_seconds_count',
      'service_mesh_request_bytes_total',
      'service_mesh_response_bytes_total',
    ])
      expect(
        only(samples, family)
          .map((s) => s.labels.reporter)
          .sort(),
        family,
      ).toEqual(['destination', 'source']);
    expect(sum(samples, 'service_mesh_request_bytes_total', { reporter: 'destination' })).toBe(20);
  });

  it('exports retries and rate-limited requests only once their stage registers, then from 0', async () => {
    const stats = newStats();
    stats.onRequestEnd('main', { ...ok, status: 429, flag: 'RL' });
    stats.onRequestEnd('main', ok);
    let text = await stats.render();
    expect(text).not.toContain('service_mesh_retries_total');
    expect(text).not.toContain('service_mesh_rate_limited_requests_total');

    stats.registerRetries();
    stats.registerRateLimits();
    let samples = await scrape(stats);
    expect(only(samples, 'service_mesh_retries_total').map((s) => s.value)).toEqual([0]);
    expect(sum(samples, 'service_mesh_rate_limited_requests_total')).toBe(1);

    stats.onRetry(ok);
    stats.onRetry(ok);
    stats.registerRetries(); // a second registration (a reload rebuilding the stage) changes nothing
    samples = await scrape(stats);
    expect(sum(samples, 'service_mesh_retries_total', { destination_service: 'api', reporter: 'source' })).toBe(2);
    text = await stats.render();
    expect(text.match(/# TYPE service_mesh_retries_total/g)).toHaveLength(1);
  });

  it('exports no family waiting for a feeder (manifests/README.md) until its feeder registers, then as documented', async () => {
    const stats = newStats();
    stats.onRequestEnd('main', { ...ok, status: 429, flag: 'RL' });
    const waiting = readPendingFamilies().filter((m) => m.from === 'proxy');
    expect(waiting.map((m) => m.name)).toContain('skein_config_push_state');
    const before = await stats.render();
    for (const m of waiting) expect(before, m.name).not.toContain(m.name);

    const api = { name: 'api', service: 'api' };
    stats.registerRetries();
    stats.registerRateLimits();
    stats.setCircuitBreakerOpen(api, false);
    stats.setCertificateExpiry('spiffe://mesh.local/ns/default/sa/web', Date.now() + 86_400_000, Date.now());
    stats.registerOutlierDetection(api);
    stats.registerHealthChecks(api);
    stats.setConfigPushState('connecting');
    const text = await stats.render();
    const samples = parseExposition(text);
    for (const m of waiting) {
      expect(text, m.name).toContain(`# TYPE ${m.name} ${m.type}\n`);
      const found = only(samples, m.name);
      expect(found.length, m.name).toBeGreaterThan(0);
      for (const s of found) expect(Object.keys(s.labels).sort(), m.name).toEqual([...m.labels].sort());
    }
    expect(only(samples, 'service_mesh_outlier_ejections_total').map((s) => [s.labels, s.value])).toEqual([
      [{ destination_service: 'api' }, 0],
    ]);
    expect(sum(samples, 'service_mesh_health_checks_total', { result: 'failure' })).toBe(0);
    expect(sum(samples, 'service_mesh_circuit_breaker_open')).toBe(0);
    expect(sum(samples, 'skein_config_push_state', { state: 'connecting' })).toBe(1);
  });

  it('labels absent services and versions "unknown" (no route, no version label, no x-source-service)', async () => {
    const stats = newStats();
    stats.onRequestEnd('main', { ...ok, sourceService: 'unknown', destinationService: '', status: 404, flag: 'NR' });
    stats.onRequestEnd('main', { ...ok, destinationVersion: '' });
    const rows = only(await scrape(stats), 'service_mesh_requests_total').map((s) => s.labels);
    expect(rows).toEqual([
      expect.objectContaining({ source_service: UNKNOWN, destination_service: UNKNOWN, destination_version: 'v1' }),
      expect.objectContaining({ source_service: 'web', destination_service: 'api', destination_version: UNKNOWN }),
    ]);
  });
});

describe('label cardinality', () => {
  it('10,000 distinct paths, ids, hosts and addresses add no series', async () => {
    const stats = newStats();
    stats.onRequestEnd('main', fullRecord({}));
    const before = (await scrape(stats)).length;
    for (let i = 0; i < 10_000; i++)
      stats.onRequestEnd(
        'main',
        fullRecord({
          path: `/users/${i}`,
          requestId: `req-${i}`,
          authority: `h${i}.example`,
          remoteAddress: `10.0.${i >> 8}.${i & 255}`,
          userAgent: `agent/${i}`,
          upstreamHost: `10.1.${i >> 8}.${i & 255}:8080`,
        }),
      );
    const after = await scrape(stats);
    expect(after.length).toBe(before);
    expect(sum(after, 'service_mesh_requests_total')).toBe(10_001);
    for (const s of after) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/\/users\/|req-|h\d+\./);
  });

  it('caps the values a client-supplied source_service can take, and replaces implausible ones', async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry, { valuesPerLabel: 8, groups: 100 });
    for (let i = 0; i < 10_000; i++) metrics.onRequestEnd({ ...ok, sourceService: `caller-${i}` });
    metrics.onRequestEnd({ ...ok, sourceService: 'x'.repeat(500) });
    metrics.onRequestEnd({ ...ok, sourceService: 'bad\nvalue' });
    const samples = parseExposition(await registry.metrics());
    const sources = only(samples, 'service_mesh_requests_total').map((s) => [s.labels.source_service, s.value]);
    expect(sources).toEqual([
      ...Array.from({ length: 8 }, (_, i) => [`caller-${i}`, 1]),
      [OTHER, 10_000 - 8],
      [UNKNOWN, 2],
    ]);
  });

  it('counts new (source, destination, version) groups past the cap under other/other/other', async () => {
    const registry = new Registry();
    const metrics = new RequestMetrics(registry, { valuesPerLabel: 1000, groups: 10 });
    for (let i = 0; i < 50; i++) metrics.onRequestEnd({ ...ok, destinationService: `svc-${i}` });
    expect(metrics.groupCount).toBe(11);
    const samples = parseExposition(await registry.metrics());
    expect(only(samples, 'service_mesh_requests_total')).toHaveLength(11);
    expect(sum(samples, 'service_mesh_requests_total', { destination_service: OTHER, source_service: OTHER })).toBe(40);
    expect(sum(samples, 'service_mesh_request_duration_seconds_count')).toBe(50);
  });
});

describe('ProxyStats', () => {
  it('with metrics disabled, exports no per-request series but keeps connection and config state', async () => {
    const stats = newStats({ metricsEnabled: false });
    stats.onRequestEnd('main', ok);
    stats.onRetry(ok);
    stats.downstreamConnections('main', +1);
    stats.configVersion = 3;
    let samples = await scrape(stats);
    expect(samples.filter((s) => s.name.startsWith('service_mesh_'))).toEqual([]);
    expect(samples.filter((s) => s.name.startsWith('skein_proxy_'))).toEqual([]);
    expect(sum(samples, 'skein_downstream_connections_active', { listener: 'main' })).toBe(1);
    expect(sum(samples, 'skein_config_version')).toBe(3);

    stats.metricsEnabled = true; // a reload turned them on
    stats.onRequestEnd('main', ok);
    samples = await scrape(stats);
    expect(sum(samples, 'service_mesh_requests_total')).toBe(1);
  });

  it('keeps the skein_* families other parts of the proxy report to', async () => {
    const stats = newStats();
    stats.inFlight = 2;
    stats.configVersion = 7;
    stats.configHash = 'ab12';
    stats.configReloadFailures = 1;
    stats.downstreamConnections('main', +1);
    stats.downstreamConnections('main', +1);
    stats.downstreamConnections('main', -1);
    stats.upstreamConnections('api', +1);
    stats.onProtocolError('main', 'HPE_INVALID_METHOD');
    stats.onTcpConnectionEnd('tcp', 'UF');
    const text = await stats.render();
    for (const line of [
      'skein_requests_active 2',
      'skein_config_version 7',
      'skein_config_info{hash="ab12"} 1',
      'skein_config_reload_failures_total 1',
      'skein_downstream_connections_active{listener="main"} 1',
      'skein_downstream_connections_total{listener="main"} 2',
      'skein_upstream_connections_active{cluster="api"} 1',
      'skein_upstream_connections_total{cluster="api"} 1',
      'skein_downstream_protocol_errors_total{listener="main",code="HPE_INVALID_METHOD"} 1',
      'skein_tcp_connections_total{listener="tcp",response_flag="UF"} 1',
    ])
      expect(text.split('\n')).toContain(line);
  });

  it('keeps one registry per proxy: two in one process do not share counts', async () => {
    const a = newStats();
    const b = newStats();
    a.onRequestEnd('main', ok);
    expect(sum(await scrape(a), 'service_mesh_requests_total')).toBe(1);
    expect(sum(await scrape(b), 'service_mesh_requests_total')).toBe(0);
  });

  it("adds Node's process metrics, shared by every proxy in the process", async () => {
    const text = await new ProxyStats().render();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(await new ProxyStats().render()).toMatch(/^process_resident_memory_bytes \d/m);
  });

  it('renders text that promtool parses, with no lint findings beyond the known names', async () => {
    const stats = new ProxyStats();
    stats.onRequestEnd('main', { ...ok, sourceService: 'quote"and\\backslash' });
    stats.registerRetries();
    stats.registerRateLimits();
    stats.registerOutlierDetection({ name: 'api', service: 'api' });
    stats.setCertificateExpiry('spiffe://mesh.local/ns/default/sa/web', Date.now() + 86_400_000, Date.now());
    stats.mtlsHandshake('outbound', 'untrusted-chain');
    stats.setConfigPushState('synced');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: await stats.render(), encoding: 'utf8' });
    if (r.error !== undefined) throw new Error(`promtool: ${r.error.message} (apt-get install prometheus)`);
    const findings = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() !== '')
      // The contract's names for the certificate gauges, and prom-client's own nodejs_*_total gauges.
      .filter((l) => !/^(service_mesh_certificate_expiry|skein_certificate_validity)_days use base unit/.test(l))
      .filter((l) => !/^nodejs_active_\w+_total non-counter metrics/.test(l));
    expect(findings).toEqual([]);
    expect([0, 3]).toContain(r.status); // 3: lint findings only (the ones above)
  });
});
