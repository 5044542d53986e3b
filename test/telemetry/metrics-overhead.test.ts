// What the proxy itself costs: the time a request spent in the proxy (its duration less the upstream's time to
// the response head) as a histogram per listener, and CPU per request between scrapes as a gauge.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  OVERHEAD_BUCKETS_S,
  ProxyOverheadMetrics,
  cpuSecondsPerRequest,
  proxyOverheadMs,
} from '../../src/telemetry/metrics-overhead.ts';

const forwarded = { startMs: 100, upstreamStartMs: 100.03, upstreamHeadersMs: 104.03, endMs: 104.05 };

describe('proxyOverheadMs', () => {
  it("is the request's duration less the upstream's time to its response head", () => {
    expect(proxyOverheadMs(forwarded)).toBeCloseTo(0.05, 9);
  });

  it('is the whole duration for a local reply (no upstream request)', () => {
    expect(proxyOverheadMs({ startMs: 10, endMs: 10.2, upstreamStartMs: 0, upstreamHeadersMs: 0 })).toBeCloseTo(0.2);
  });

  it('counts a timed-out or failed upstream up to the end as upstream time, not as the proxy', () => {
    const timedOut = { startMs: 10, upstreamStartMs: 10.04, upstreamHeadersMs: 0, endMs: 5010 };
    expect(proxyOverheadMs(timedOut)).toBeCloseTo(0.04, 9);
  });

  it('is never negative', () => {
    expect(proxyOverheadMs({ startMs: 10, endMs: 9, upstreamStartMs: 0, upstreamHeadersMs: 0 })).toBe(0);
  });
});

describe('cpuSecondsPerRequest', () => {
  it('divides the CPU used between two samples by the requests finished between them', () => {
    expect(cpuSecondsPerRequest({ cpuUs: 1000, requests: 10 }, { cpuUs: 31_000, requests: 1010 })).toBeCloseTo(30e-6);
  });

  it('has no figure when no request finished', () => {
    expect(cpuSecondsPerRequest({ cpuUs: 1000, requests: 10 }, { cpuUs: 9000, requests: 10 })).toBeUndefined();
  });
});

function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(prefix));
}

function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  if (line === undefined) throw new Error(`no sample ${sample}`);
  return Number(line.slice(sample.length + 1));
}

describe('ProxyOverheadMetrics', () => {
  it("counts every request once per listener in the overhead histogram's buckets, sum below the durations'", async () => {
    const registry = new Registry();
    const metrics = new ProxyOverheadMetrics(registry);
    let durationsMs = 0;
    for (let i = 0; i < 50; i++) {
      const rec = { ...forwarded, endMs: forwarded.endMs + i * 0.001 };
      durationsMs += rec.endMs - rec.startMs;
      metrics.onRequestEnd('outbound', rec);
    }
    metrics.onRequestEnd('inbound', { startMs: 0, endMs: 3, upstreamStartMs: 0, upstreamHeadersMs: 0 });
    const text = await registry.metrics();
    expect(value(text, 'skein_proxy_overhead_seconds_count{listener="outbound"}')).toBe(50);
    expect(value(text, 'skein_proxy_overhead_seconds_count{listener="inbound"}')).toBe(1);
    const sum = value(text, 'skein_proxy_overhead_seconds_sum{listener="outbound"}');
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(durationsMs / 1000);
    // 50 µs each (plus up to 49 ns): all above 25 µs and at most 100 µs.
    const bucket = (listener: string, le: string) => {
      const line = lines(text, 'skein_proxy_overhead_seconds_bucket{').find(
        (l) => l.includes(`listener="${listener}"`) && l.includes(`le="${le}"`),
      );
      return Number(line?.split(' ')[1]);
    };
    const les = lines(text, 'skein_proxy_overhead_seconds_bucket{')
      .filter((l) => l.includes('"outbound"'))
      .map((l) => /le="([^"]+)"/.exec(l)?.[1]);
    expect(les).toEqual([...OVERHEAD_BUCKETS_S.map(String), '+Inf']);
    expect(bucket('outbound', '0.000025')).toBe(0);
    expect(bucket('outbound', '0.0001')).toBe(50);
    expect(bucket('inbound', '0.0025')).toBe(0);
    expect(bucket('inbound', '0.005')).toBe(1);
  });

  it('exports CPU per request since the previous scrape, and no sample when no request finished', async () => {
    const registry = new Registry();
    let cpuUs = 5_000;
    const metrics = new ProxyOverheadMetrics(registry, () => cpuUs);
    expect(lines(await registry.metrics(), 'skein_proxy_cpu_seconds_per_request')).toEqual([]);
    cpuUs += 4_000;
    for (let i = 0; i < 100; i++) metrics.onRequestEnd('main', forwarded);
    expect(value(await registry.metrics(), 'skein_proxy_cpu_seconds_per_request')).toBeCloseTo(40e-6, 12);
    cpuUs += 1_000; // idle between scrapes: no figure rather than a 0 that reads as "free"
    const idle = await registry.metrics();
    expect(idle).toContain('# TYPE skein_proxy_cpu_seconds_per_request gauge');
    expect(lines(idle, 'skein_proxy_cpu_seconds_per_request')).toEqual([]);
    cpuUs += 2_000;
    for (let i = 0; i < 10; i++) metrics.onRequestEnd('main', forwarded);
    expect(value(await registry.metrics(), 'skein_proxy_cpu_seconds_per_request')).toBeCloseTo(200e-6, 12);
  });

  it('averages the CPU gauge across workers instead of adding it up', async () => {
    const registry = new Registry();
    new ProxyOverheadMetrics(registry);
    const json = await registry.getMetricsAsJSON();
    expect(json.find((m) => m.name === 'skein_proxy_cpu_seconds_per_request')?.aggregator).toBe('average');
  });
});
