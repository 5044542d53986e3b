// The figures of every worker of `skein proxy --workers N` merged into the whole process's: Prometheus families
// through prom-client's AggregatorRegistry (counters and histograms summed, each gauge by the rule below), and
// /clusters with each endpoint's counts summed. Pure: proxy/workers-gather.ts feeds it what the workers sent.
import { type Aggregator, AggregatorRegistry, Gauge, type Registry } from 'prom-client';

/** One registry's families as prom-client's getMetricsAsJSON() gives them (and the IPC channel carries them). */
export type MetricFamilies = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/**
 * How each of the proxy's gauges combines across workers. Counters and histograms always sum, and prom-client's
 * process metrics carry their own rule (start time omitted, event-loop lag averaged, version info first).
 * A gauge missing here would sum, which is wrong for most that are not counts: a test holds every gauge the proxy
 * registers to an entry, so a new one gets a decision.
 */
export const GAUGE_AGGREGATORS: Readonly<Record<string, Aggregator>> = {
  skein_requests_active: 'sum',
  skein_downstream_connections_active: 'sum',
  skein_upstream_connections_active: 'sum',
  // Every worker loads the same file; a worker restarted after a crash counts its versions from 1 again.
  skein_config_version: 'max',
  // 1 on each worker's config hash: workers loading the same file show one series, a lagging worker a second.
  skein_config_info: 'max',
  // One-hot in each worker: 1 on a state when any worker is in it.
  skein_config_push_state: 'max',
  // Each worker checks and ejects on its own: the worst view counts (fewest healthy, most ejected).
  skein_endpoints_healthy: 'min',
  skein_endpoints_ejected: 'max',
  // Each worker has its own breakers: open when any worker's is.
  service_mesh_circuit_breaker_open: 'max',
  // 0 closed, 1 half-open, 2 open: the furthest from closed any worker's breaker for the endpoint is.
  skein_circuit_breaker_state: 'max',
  // The certificate that expires first is the one to act on.
  service_mesh_certificate_expiry_days: 'min',
  // Every worker holds the same identity's certificate; the shortest validity sets the lowest expiry threshold.
  skein_certificate_validity_days: 'min',
  // The primary's process_* families are merged too (proxy/workers-gather.ts), so the earliest start is when the
  // process the user ran started (prom-client omits this family across workers).
  process_start_time_seconds: 'min',
  // Each worker divides its own CPU by its own requests since its last scrape: the mean of the workers' figures
  // (they share the load evenly enough that weighting by requests would change little).
  skein_proxy_cpu_seconds_per_request: 'average',
};

/** A worker asked for its figures that did not give them, and why (shown in the answer, never silently left out). */
export interface MissingWorker {
  pid: number;
  reason: string;
  /** Its figures from its last answer stood in (metrics only; see WorkerFiguresMemory). */
  stale?: boolean;
}

export interface WorkerTally {
  /** Workers asked: those running with a connected IPC channel when the scrape began. */
  asked: number;
  missing: readonly MissingWorker[];
}

/**
 * Prometheus text for the whole process: the families of each worker (and the stand-ins WorkerFiguresMemory
 * gives) merged, plus `skein_scrape_workers` saying how many answered, so a scrape short of one says so.
 */
export async function mergeMetrics(perWorker: readonly MetricFamilies[], tally: WorkerTally): Promise<string> {
  const withRules = perWorker.map((families) =>
    families.map((f) => {
      const rule = String(f.type) === 'gauge' ? GAUGE_AGGREGATORS[f.name] : undefined;
      return rule === undefined ? f : { ...f, aggregator: rule };
    }),
  );
  const registry = AggregatorRegistry.aggregate(withRules);
  const workers = new Gauge({
    name: 'skein_scrape_workers',
    help:
      'Workers asked for their figures by this scrape, by result: answered; stale (late: its last figures stood in); ' +
      'missing (none this time; an exited worker leaves its counters behind).',
    labelNames: ['result'],
    registers: [registry],
  });
  const stale = tally.missing.filter((m) => m.stale === true).length;
  workers.set({ result: 'answered' }, tally.asked - tally.missing.length);
  workers.set({ result: 'stale' }, stale);
  workers.set({ result: 'missing' }, tally.missing.length - stale);
  const text = await registry.metrics();
  if (tally.missing.length === 0) return text;
  const notes = tally.missing.map(
    (m) =>
      `# skein: worker pid ${m.pid} missing from this scrape: ${m.reason}` +
      (m.stale === true ? '; its figures from its last answer stand in' : ''),
  );
  return `${notes.join('\n')}\n${text}`;
}

/**
 * Keeps the process's counters from going backwards when a worker's figures are absent. Prometheus reads any
 * decrease of a counter as a restart and counts the whole new value as increase, so one scrape without a worker
 * that had counted a million requests would show a million-request spike. A worker that is alive but late is
 * stood in for by its last figures; one that exits leaves its last counters and histograms behind, added to
 * every later scrape (what it counted after its last answer is lost; nothing is counted twice).
 */
export class WorkerFiguresMemory {
  private readonly last = new Map<number, MetricFamilies>();
  /** Cluster worker ids are never reused: an answer merged after its worker's exit must not be remembered. */
  private readonly gone = new Set<number>();
  /** The counters and histograms of every exited worker, merged into one list as they exit. */
  private retired: Promise<MetricFamilies> = Promise.resolve([]);

  answered(workerId: number, families: MetricFamilies): void {
    if (!this.gone.has(workerId)) this.last.set(workerId, families);
  }

  /** The figures to stand in for a worker that did not answer in time; undefined if it never answered. */
  lastOf(workerId: number): MetricFamilies | undefined {
    return this.last.get(workerId);
  }

  exited(workerId: number): void {
    const last = this.last.get(workerId);
    this.last.delete(workerId);
    this.gone.add(workerId);
    if (last === undefined) return;
    const cumulative = last.filter((f) => String(f.type) === 'counter' || String(f.type) === 'histogram');
    this.retired = this.retired.then((retired) =>
      AggregatorRegistry.aggregate([retired, cumulative]).getMetricsAsJSON(),
    );
  }

  /** What exited workers had counted: one more list to merge into every scrape. */
  retiredFamilies(): Promise<MetricFamilies> {
    return this.retired;
  }
}

/** What one worker's admin /clusters shows (proxy/admin.ts describeClusters). */
export interface ClustersView {
  version: number;
  clusters: Record<string, unknown>[];
}

/** Endpoint fields that count something per worker, so the process's figure is the sum. */
const SUMMED_ENDPOINT_FIELDS: readonly string[] = ['activeRequests', 'requestsTotal', 'failuresTotal', 'connections'];

/** A retry budget's settings (each worker has the same), as opposed to its counts. */
const RETRY_BUDGET_SETTINGS: ReadonlySet<string> = new Set(['retryRatio', 'minRetriesPerSecond', 'ttlMs']);

/**
 * The per-worker counts of a cluster summed: its circuit-breaking counts (`circuitBreakers`: connections,
 * requests, overflows…; its thresholds, max*, are each worker's own, as every worker keeps its own counts
 * against them) and its retry budget's window (`retryBudget`: requests, retries, available, refused; every
 * worker keeps its own budget, so the process as a whole allows their sum).
 */
function sumClusterCounts(merged: Record<string, unknown>, c: Record<string, unknown>): void {
  const sum = (
    a: Record<string, unknown>,
    b: Record<string, unknown>,
    setting: (k: string) => boolean,
  ): Record<string, unknown> => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (setting(k)) continue;
      if (typeof v === 'number') out[k] = ((out[k] as number | undefined) ?? 0) + v;
      else if (typeof v === 'object' && v !== null && typeof out[k] === 'object')
        out[k] = sum(out[k] as Record<string, unknown>, v as Record<string, unknown>, setting);
    }
    return out;
  };
  const fields: [string, (k: string) => boolean][] = [
    ['circuitBreakers', (k) => /^max[A-Z]/.test(k)], // maxRequests…, not the overflows' max_requests…
    ['retryBudget', (k) => RETRY_BUDGET_SETTINGS.has(k)],
  ];
  for (const [field, setting] of fields) {
    const into = merged[field] as Record<string, unknown> | undefined;
    const from = c[field] as Record<string, unknown> | undefined;
    if (into !== undefined && from !== undefined) merged[field] = sum(into, from, setting);
  }
}

/**
 * /clusters for the whole process: clusters by name and endpoints by address in the order first seen; the counts
 * in SUMMED_ENDPOINT_FIELDS summed, every other field as the first worker that has it shows it (config-derived
 * fields are the same in every worker). `version` is the highest any worker serves.
 */
export function mergeClusters(
  perWorker: readonly ClustersView[],
  tally: WorkerTally,
): ClustersView & { workers: { asked: number; answered: number; missing: readonly MissingWorker[] } } {
  const clusters = new Map<string, Record<string, unknown> & { endpoints: Map<string, Record<string, unknown>> }>();
  let version = 0;
  for (const view of perWorker) {
    version = Math.max(version, view.version);
    for (const c of view.clusters) {
      const name = String(c.name);
      let merged = clusters.get(name);
      if (merged === undefined) clusters.set(name, (merged = { ...c, endpoints: new Map() }));
      else sumClusterCounts(merged, c);
      for (const e of Array.isArray(c.endpoints) ? (c.endpoints as Record<string, unknown>[]) : []) {
        const address = String(e.address);
        const seen = merged.endpoints.get(address);
        if (seen === undefined) {
          merged.endpoints.set(address, { ...e });
          continue;
        }
        for (const field of SUMMED_ENDPOINT_FIELDS)
          if (typeof e[field] === 'number') seen[field] = ((seen[field] as number | undefined) ?? 0) + e[field];
      }
    }
  }
  return {
    version,
    clusters: [...clusters.values()].map((c) => ({ ...c, endpoints: [...c.endpoints.values()] })),
    workers: { asked: tally.asked, answered: tally.asked - tally.missing.length, missing: tally.missing },
  };
}
