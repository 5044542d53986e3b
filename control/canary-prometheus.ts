// What the canary controller reads from Prometheus at the end of a window, as Argo Rollouts' analysis does: per
// version, the requests, the errors (5xx, and gRPC errors answered with another HTTP status) and the latency
// histogram the proxies exported over the window, turned into the judge's VersionWindow. The counts come from
// the calling side's proxies (reporter="source"), the ones that run the canary's split: a call that crosses two
// proxies is then counted once. increase() extrapolates, so counts are rounded to whole requests.
import type { LatencyHistogram } from '../src/canary/histogram.ts';
import type { VersionWindow } from '../src/canary/judge.ts';
import { DURATION_BUCKETS_S } from '../src/telemetry/metrics.ts';

/** One sample of an instant vector in Prometheus's HTTP API answer (`data.result[]`). */
export interface VectorSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

const REQUESTS = 'service_mesh_requests_total';
const BUCKETS = 'service_mesh_request_duration_seconds_bucket';

/** A PromQL string literal. */
function quote(s: string): string {
  return JSON.stringify(s);
}

/** The PromQL of one version's window (exported for the tests and for people checking what control asks). */
export function versionQueries(
  service: string,
  version: string,
  windowS: number,
): { requests: string; errors: string; buckets: string } {
  const sel = `reporter="source",destination_service=${quote(service)},destination_version=${quote(version)}`;
  const range = `[${Math.max(1, Math.round(windowS))}s]`;
  return {
    requests: `sum(increase(${REQUESTS}{${sel}}${range}))`,
    errors:
      `(sum(increase(${REQUESTS}{${sel},response_code=~"5.."}${range})) or vector(0))` +
      ` + (sum(increase(${REQUESTS}{${sel},response_code!~"5..",grpc_status!~"|0"}${range})) or vector(0))`,
    buckets: `sum by (le) (increase(${BUCKETS}{${sel}}${range}))`,
  };
}

/** A count from an increase(): rounded to a whole number, never negative. */
function count(value: string): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}

/** The single value of a sum() query (0 when there is no sample: no traffic in the window). */
export function scalarOf(samples: readonly VectorSample[]): number {
  return samples.length === 0 ? 0 : count(samples[0].value[1]);
}

/** Seconds as a `le` label gives them ("0.0025", "+Inf") → ms, without binary noise (0.0025 × 1000). */
function leToMs(le: string): number {
  return Number((Number(le) * 1000).toPrecision(12));
}

/**
 * `sum by (le) (increase(..._bucket[w]))` → a LatencyHistogram: bounds in ms, and counts per bucket (the
 * cumulative `le` counts differenced) plus the overflow above the top bound. An empty answer (no traffic) is
 * the proxies' bucket layout with nothing in it, so the two versions still have the same bounds.
 */
export function histogramFromBuckets(samples: readonly VectorSample[]): LatencyHistogram {
  if (samples.length === 0)
    return {
      bounds: DURATION_BUCKETS_S.map((s) => leToMs(String(s))),
      counts: DURATION_BUCKETS_S.map(() => 0).concat(0),
    };
  const cumulative = samples
    .map((s) => {
      const le = s.metric.le;
      if (le === undefined) throw new Error('a bucket sample without an le label');
      const n = Number(s.value[1]);
      return { le: le === '+Inf' ? Infinity : leToMs(le), n: Number.isFinite(n) && n > 0 ? n : 0 };
    })
    .sort((a, b) => a.le - b.le);
  if (cumulative[cumulative.length - 1].le !== Infinity) throw new Error('the buckets have no le="+Inf"');
  const bounds: number[] = [];
  const counts: number[] = [];
  let below = 0;
  for (const { le, n } of cumulative) {
    if (le !== Infinity) bounds.push(le);
    // Extrapolated cumulative counts can dip by a fraction between buckets: never a negative bucket.
    const c = Math.max(0, n - below);
    counts.push(Math.round(c));
    below = Math.max(below, n);
  }
  return { bounds, counts };
}

export class PrometheusClient {
  readonly url: string;
  readonly #timeoutMs: number;

  constructor(url: string, timeoutMs = 5_000) {
    this.url = url.replace(/\/+$/, '');
    this.#timeoutMs = timeoutMs;
  }

  /** An instant query; rejects with Prometheus's own message (or the transport's). */
  async query(promql: string): Promise<VectorSample[]> {
    const res = await fetch(`${this.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: promql }).toString(),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await res.text();
    let body: { status?: string; error?: string; data?: { resultType?: string; result?: VectorSample[] } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`Prometheus answered ${res.status} without JSON: ${text.slice(0, 200)}`);
    }
    if (body.status !== 'success') throw new Error(`Prometheus: ${body.error ?? `status ${res.status}`}`);
    if (body.data?.resultType !== 'vector')
      throw new Error(`Prometheus: a ${body.data?.resultType} result, not a vector`);
    return body.data.result ?? [];
  }

  /** What the proxies counted for one version of `service` over the last `windowS` seconds. */
  async versionWindow(service: string, version: string, windowS: number): Promise<VersionWindow> {
    const q = versionQueries(service, version, windowS);
    const [requests, errors, buckets] = await Promise.all([
      this.query(q.requests),
      this.query(q.errors),
      this.query(q.buckets),
    ]);
    const total = scalarOf(requests);
    return { requests: total, errors: Math.min(total, scalarOf(errors)), latency: histogramFromBuckets(buckets) };
  }
}
