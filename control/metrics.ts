// Control's own /metrics, for the skein-control ServiceMonitor: this process (prom-client's default process_* and
// nodejs_* families), its API requests by route pattern, method and status, and the bench jobs and probe runs it
// holds by status. People and CI call the API, not the data path, so prom-client's own inc()/observe() are cheap
// enough here; the job and run counts are read at scrape time from the managers that own them.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { JOB_STATUSES } from './bench-jobs.ts';
import type { ApiReply, Route } from './http.ts';
import { PROBE_STATUSES } from './probe-runs.ts';

/** The route label of a request no route's pattern matched (its raw path never becomes a label value). */
export const UNMATCHED_ROUTE = 'unmatched';

/** Methods kept as label values; anything else a client sends is counted as `other`. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

const API_DURATION_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ControlMetricsSources {
  benchJobs(): Iterable<{ readonly status: string }>;
  probeRuns(): Iterable<{ readonly status: string }>;
}

export class ControlMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly durations: Histogram<'route' | 'method'>;

  constructor(sources: ControlMetricsSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    this.requests = new Counter({
      name: 'skein_control_api_requests_total',
      help: 'Control API requests answered, by route pattern (or "unmatched"), method and HTTP status.',
      labelNames: ['route', 'method', 'status'],
      registers: [r],
    });
    this.durations = new Histogram({
      name: 'skein_control_api_request_duration_seconds',
      help: 'Time from a control API request arriving to its answer being sent, in seconds.',
      labelNames: ['route', 'method'],
      buckets: API_DURATION_BUCKETS_S,
      registers: [r],
    });
    countsByStatus(
      r,
      'skein_control_bench_jobs',
      'Bench jobs control holds (within --retention-days), by status.',
      JOB_STATUSES,
      () => sources.benchJobs(),
    );
    countsByStatus(
      r,
      'skein_control_probe_runs',
      'eBPF probe runs control holds (within --retention-days), by status.',
      PROBE_STATUSES,
      () => sources.probeRuns(),
    );
  }

  /** Once per API response (createApiServer's onResponse). `route` is the matched pattern or UNMATCHED_ROUTE. */
  onApiResponse(route: string, method: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'other';
    this.requests.inc({ route, method: m, status: String(status) });
    this.durations.observe({ route, method: m }, seconds);
  }

  /** GET /metrics: Prometheus text. */
  route(): Route {
    return {
      method: 'GET',
      path: '/metrics',
      handle: async (): Promise<ApiReply> => ({
        body: await this.registry.metrics(),
        contentType: this.registry.contentType,
      }),
    };
  }
}

/** A gauge per status, every status listed (0 until one holds it), so the first failure is an increase. */
function countsByStatus(
  registry: Registry,
  name: string,
  help: string,
  statuses: readonly string[],
  read: () => Iterable<{ readonly status: string }>,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const counts = new Map<string, number>(statuses.map((s) => [s, 0]));
      for (const item of read()) counts.set(item.status, (counts.get(item.status) ?? 0) + 1);
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
}
