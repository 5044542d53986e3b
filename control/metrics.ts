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
  /** Control's config version (one more per write to the traffic model). */
  configVersion(): number;
  /** Every proxy that ever opened a push stream since start: connected or not, and what it runs. */
  proxies(): Iterable<{
    readonly node: string;
    readonly service: string;
    readonly connected: boolean;
    readonly running: { readonly version: number | null } | null;
    readonly lastAck: { readonly latencyMs: number | null } | null;
  }>;
}

/** Push latency buckets (write to ACK), in seconds: the targets are p99 < 1 s at 100 proxies, < 5 s at 1,000. */
const PUSH_LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ControlMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly durations: Histogram<'route' | 'method'>;
  private readonly pushLatency: Histogram;
  private readonly nacks: Counter;

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
    this.pushLatency = new Histogram({
      name: 'skein_control_push_latency_seconds',
      help: 'From an API write to a proxy ACKing the snapshot it led to, in seconds (one observation per proxy).',
      buckets: PUSH_LATENCY_BUCKETS_S,
      registers: [r],
    });
    this.nacks = new Counter({
      name: 'skein_control_push_nacks_total',
      help: 'Snapshots a proxy refused (NACK): the proxy kept its running config.',
      registers: [r],
    });
    new Gauge({
      name: 'skein_control_config_version',
      help: "Control's config version: one more on every write to rules or services.",
      registers: [r],
      collect() {
        this.set(sources.configVersion());
      },
    });
    new Gauge({
      name: 'skein_control_connected_proxies',
      help: 'Proxies holding a push stream to this control process now.',
      registers: [r],
      collect() {
        let n = 0;
        for (const p of sources.proxies()) if (p.connected) n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'skein_control_proxy_config_version',
      help: 'The control config version each connected proxy runs (its last ACK), by proxy node id and service.',
      labelNames: ['node', 'service'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of sources.proxies())
          if (p.connected && p.running?.version != null)
            this.set({ node: p.node, service: p.service }, p.running.version);
      },
    });
    new Gauge({
      name: 'skein_control_proxy_push_latency_seconds',
      help: "The latest push latency of each connected proxy (API write to that proxy's ACK), in seconds.",
      labelNames: ['node'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of sources.proxies())
          if (p.connected && p.lastAck?.latencyMs != null) this.set({ node: p.node }, p.lastAck.latencyMs / 1000);
      },
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

  onPushAck(latencyMs: number | null): void {
    if (latencyMs !== null) this.pushLatency.observe(latencyMs / 1000);
  }

  onPushNack(): void {
    this.nacks.inc();
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
