// Canary windows from the proxies' own reports: the counts a window holds are each proxy's latest report minus
// its last one from before the window, summed over proxies; a proxy whose counts went down restarted. The
// proxy side reads its real prom-client families (a Registry with the same metric names and labels).
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ReportedStats } from '../../control/reported-stats.ts';
import { versionCounts } from '../../src/canary/version-counts.ts';

const bucketsOf = (pairs: [string, number][]) => pairs;

describe('reported per-version stats', () => {
  it('a proxy turns its request counter and duration histogram into per-version cumulative counts', async () => {
    const r = new Registry();
    const labels = ['reporter', 'destination_service', 'destination_version', 'response_code', 'grpc_status'];
    const requests = new Counter({
      name: 'service_mesh_requests_total',
      help: 'h',
      labelNames: labels,
      registers: [r],
    });
    const durations = new Histogram({
      name: 'service_mesh_request_duration_seconds',
      help: 'h',
      labelNames: ['reporter', 'destination_service', 'destination_version'],
      buckets: [0.01, 0.1],
      registers: [r],
    });
    const base = { reporter: 'source', destination_service: 'app', grpc_status: '' };
    requests.inc({ ...base, destination_version: 'v1', response_code: '200' }, 90);
    requests.inc({ ...base, destination_version: 'v1', response_code: '503' }, 10);
    requests.inc({ ...base, destination_version: 'v2', response_code: '200', grpc_status: '14' }, 4);
    requests.inc({ ...base, reporter: 'destination', destination_version: 'v2', response_code: '500' }, 50);
    for (const s of [0.005, 0.05, 0.5])
      durations.observe({ reporter: 'source', destination_service: 'app', destination_version: 'v1' }, s);
    const counts = versionCounts(await r.getMetricsAsJSON());
    const v1 = counts.find((c) => c.version === 'v1')!;
    const v2 = counts.find((c) => c.version === 'v2')!;
    expect(v1).toMatchObject({ service: 'app', requests: 100, errors: 10 });
    expect(v1.buckets).toEqual([
      ['0.01', 1],
      ['0.1', 2],
      ['+Inf', 3],
    ]);
    expect(v2).toMatchObject({ requests: 4, errors: 4 }); // a gRPC error answered 200; the inbound side not counted
  });

  it('a window is the latest report minus the last one before it, summed over proxies; a restart starts over', async () => {
    const s = new ReportedStats();
    const t0 = 1_000_000;
    const v = (requests: number, errors: number, fast: number) => ({
      node: '',
      versions: [
        {
          service: 'app',
          version: 'v2',
          requests,
          errors,
          buckets: bucketsOf([
            ['0.01', fast],
            ['+Inf', requests],
          ]),
        },
      ],
    });
    s.report({ ...v(100, 1, 90), node: 'a' }, t0);
    s.report({ ...v(150, 3, 130), node: 'a' }, t0 + 5_000);
    s.report({ ...v(200, 6, 160), node: 'a' }, t0 + 10_000);
    s.report({ ...v(1_000, 0, 1_000), node: 'b' }, t0);
    s.report({ ...v(20, 2, 10), node: 'b' }, t0 + 10_000); // b restarted: 20 since
    const w = await s.versionWindow('app', 'v2', 7, t0 + 10_000); // from t0+3s: a's base is its t0 report
    expect(w.requests).toBe(100 + 20);
    expect(w.errors).toBe(5 + 2);
    expect(w.latency.counts).toEqual([70 + 10, 30 + 10]);
    expect((await s.versionWindow('app', 'v1', 7, t0 + 10_000)).requests).toBe(0);
  });
});
