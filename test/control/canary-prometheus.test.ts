// What the canary controller makes of Prometheus's answers: `sum by (le) (increase(..._bucket[w]))` in the HTTP
// API's shape (values as strings, extrapolated fractions, buckets in any order, "+Inf") becomes the judge's
// histogram (bounds in ms, counts per bucket plus overflow), and a sum() of no series is zero requests.
import { describe, expect, it } from 'vitest';
import { histogramFromBuckets, scalarOf, versionQueries, type VectorSample } from '../../control/canary-prometheus.ts';
import { histogramPercentile, histogramTotal } from '../../src/canary/histogram.ts';
import { DURATION_BUCKETS_S } from '../../src/telemetry/metrics.ts';

/** An answer as Prometheus 2.x's /api/v1/query returns it (data.result of resultType "vector"). */
const answer = {
  status: 'success',
  data: {
    resultType: 'vector',
    result: [
      { metric: { le: '+Inf' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '0.001' }, value: [1764825600.123, '0'] },
      { metric: { le: '0.0025' }, value: [1764825600.123, '0'] },
      { metric: { le: '0.005' }, value: [1764825600.123, '10.416666666666666'] },
      { metric: { le: '0.01' }, value: [1764825600.123, '260.41666666666663'] },
      { metric: { le: '0.025' }, value: [1764825600.123, '302.0833333333333'] },
      { metric: { le: '0.05' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '0.1' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '0.25' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '0.5' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '1' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '2.5' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '5' }, value: [1764825600.123, '312.5'] },
      { metric: { le: '10' }, value: [1764825600.123, '312.5'] },
    ],
  },
} as const;

describe('Prometheus answers → canary windows', () => {
  it('turns cumulative le buckets in seconds into per-bucket counts with bounds in ms', () => {
    const h = histogramFromBuckets(answer.data.result as unknown as VectorSample[]);
    expect(h.bounds).toEqual([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);
    expect(h.counts).toEqual([0, 0, 10, 250, 42, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(histogramTotal(h)).toBe(312);
    // Read back: the median lies in (5, 10] ms, where most observations are.
    const p50 = histogramPercentile(h, 0.5)!.valueMs;
    expect(p50).toBeGreaterThan(5);
    expect(p50).toBeLessThan(10);
  });

  it('counts what lies above the top bound as overflow', () => {
    const h = histogramFromBuckets([
      { metric: { le: '0.5' }, value: [0, '3'] },
      { metric: { le: '+Inf' }, value: [0, '7'] },
      { metric: { le: '1' }, value: [0, '5'] },
    ]);
    expect(h).toEqual({ bounds: [500, 1000], counts: [3, 2, 2] });
    expect(histogramPercentile(h, 0.95)!.aboveTopBound).toBe(true);
  });

  it('never makes a negative bucket of extrapolation noise', () => {
    const h = histogramFromBuckets([
      { metric: { le: '0.01' }, value: [0, '10.2'] },
      { metric: { le: '0.1' }, value: [0, '10.1'] },
      { metric: { le: '+Inf' }, value: [0, '10.2'] },
    ]);
    expect(h.counts).toEqual([10, 0, 0]);
  });

  it('an empty answer (no traffic) is the proxies bucket layout with nothing in it', () => {
    const h = histogramFromBuckets([]);
    expect(h.bounds).toEqual(DURATION_BUCKETS_S.map((s) => Number((s * 1000).toPrecision(12))));
    expect(histogramTotal(h)).toBe(0);
    expect(scalarOf([])).toBe(0);
    expect(scalarOf([{ metric: {}, value: [0, '99.6'] }])).toBe(100);
  });

  it('refuses buckets without +Inf or without le', () => {
    expect(() => histogramFromBuckets([{ metric: { le: '1' }, value: [0, '1'] }])).toThrow(/le="\+Inf"/);
    expect(() => histogramFromBuckets([{ metric: {}, value: [0, '1'] }])).toThrow(/without an le label/);
  });

  it('asks about one version of one service as the calling proxies counted it', () => {
    const q = versionQueries('app', 'v2', 300);
    expect(q.requests).toBe(
      'sum(increase(service_mesh_requests_total{reporter="source",destination_service="app",destination_version="v2"}[300s]))',
    );
    expect(q.buckets).toMatch(
      /^sum by \(le\) \(increase\(service_mesh_request_duration_seconds_bucket\{.*\}\[300s\]\)\)$/,
    );
    expect(q.errors).toContain('response_code=~"5.."');
    expect(q.errors).toContain('grpc_status!~"|0"');
  });
});
