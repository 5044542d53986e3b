// What the proxy itself costs, exported so a user sees the mesh's overhead without running a benchmark:
// skein_proxy_overhead_seconds{listener}, the time each request spent in the proxy (its whole duration less the
// upstream's time to its response head), and skein_proxy_cpu_seconds_per_request, process CPU over requests
// finished between two scrapes. The request path adds to one histogram cell per listener, read at scrape time.
import { Gauge, type MetricType, type Registry } from 'prom-client';
import { AccumulatedHistogram, HistogramCell } from './metrics-collected.ts';
import type { RequestRecord } from './types.ts';

/** What the overhead histogram reads of a finished request (times are performance.now() ms, 0 = did not happen). */
export type OverheadInput = Pick<RequestRecord, 'startMs' | 'endMs' | 'upstreamStartMs' | 'upstreamHeadersMs'>;

/** 10 µs to 10 ms: a proxy's own share of a request (about 20-60 µs on this machine) and its tail. */
export const OVERHEAD_BUCKETS_S: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
];

/**
 * Milliseconds of a request spent in the proxy: from its head being parsed to the last byte written downstream,
 * less the upstream's part, which runs from the start of the upstream request (connection pick or connect
 * included) to the upstream's response head, or to the end when no head came (timeout, connect failure,
 * client gone). A local reply (no upstream) is all proxy time. Streaming a response body counts as proxy time
 * (telling the wait for the upstream's next chunk from our own work would cost a clock read per chunk): the
 * figure describes small exchanges best and bounds the proxy's share from above for large bodies and streams.
 */
export function proxyOverheadMs(rec: OverheadInput): number {
  const total = rec.endMs - rec.startMs;
  if (rec.upstreamStartMs === 0) return total > 0 ? total : 0;
  const upstreamEnd = rec.upstreamHeadersMs >= rec.upstreamStartMs ? rec.upstreamHeadersMs : rec.endMs;
  const overhead = total - (upstreamEnd - rec.upstreamStartMs);
  return overhead > 0 ? overhead : 0;
}

/** Samples of the process's CPU and finished requests, taken at scrapes. */
export interface CpuSample {
  /** process.cpuUsage() user + system, microseconds. */
  readonly cpuUs: number;
  readonly requests: number;
}

/**
 * CPU seconds per request between the previous scrape and this one, or undefined when no request finished in
 * between (no figure beats a made-up one). Every scrape starts the next window, so the figure follows the
 * scrape interval; CPU spent idle (timers, the scrape itself) is shared among that window's requests.
 */
export function cpuSecondsPerRequest(previous: CpuSample, now: CpuSample): number | undefined {
  const requests = now.requests - previous.requests;
  if (requests <= 0) return undefined;
  return (now.cpuUs - previous.cpuUs) / 1e6 / requests;
}

function processCpu(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export class ProxyOverheadMetrics {
  /** When false, requests are not counted (telemetry.metrics.enabled, like the service_mesh_* families). */
  enabled = true;
  private readonly byListener = new Map<string, HistogramCell<'listener'>>();
  private lastSample: CpuSample;
  private readonly cpuUs: () => number;

  constructor(registry: Registry, cpuUs: () => number = processCpu) {
    this.cpuUs = cpuUs;
    this.lastSample = { cpuUs: cpuUs(), requests: 0 };
    const byListener = this.byListener;
    new AccumulatedHistogram({
      name: 'skein_proxy_overhead_seconds',
      help: "Time each request spent in the proxy: its duration less the upstream's time to the response head.",
      labelNames: ['listener'],
      buckets: OVERHEAD_BUCKETS_S,
      registry,
      cells: () => byListener.values(),
    });
    new OptionalGauge(
      'skein_proxy_cpu_seconds_per_request',
      'Process CPU seconds (user + system) per request finished since the previous scrape.',
      registry,
      () => this.sampleCpuPerRequest(),
    );
  }

  /** Once per finished request: one bucket increment on its listener's cell. */
  onRequestEnd(listener: string, rec: OverheadInput): void {
    if (!this.enabled) return;
    const cell = this.byListener.get(listener) ?? this.addListener(listener);
    cell.observe(OVERHEAD_BUCKETS_S, proxyOverheadMs(rec) / 1000);
  }

  /** Requests counted so far, across listeners. */
  get requests(): number {
    let n = 0;
    for (const cell of this.byListener.values()) n += cell.count;
    return n;
  }

  /** At each scrape: the figure since the previous one, which this sample replaces. */
  private sampleCpuPerRequest(): number | undefined {
    const now: CpuSample = { cpuUs: this.cpuUs(), requests: this.requests };
    const value = cpuSecondsPerRequest(this.lastSample, now);
    this.lastSample = now;
    return value;
  }

  private addListener(listener: string): HistogramCell<'listener'> {
    const cell = new HistogramCell<'listener'>({ listener }, OVERHEAD_BUCKETS_S.length);
    this.byListener.set(listener, cell);
    return cell;
  }
}

// prom-client's typings name the type with an enum its JavaScript never uses: the text format needs the string.
const GAUGE_TYPE = 'gauge' as unknown as MetricType;

/**
 * A gauge without labels that has no sample while its value is undefined: prom-client's own reports 0 after a
 * reset, and 0 CPU per request would read as "free" when it means "no request to divide by".
 */
class OptionalGauge extends Gauge {
  private readonly read: () => number | undefined;
  private readonly gaugeName: string;
  private readonly gaugeHelp: string;

  constructor(name: string, help: string, registry: Registry, read: () => number | undefined) {
    // Across --workers, the mean of the workers' figures (a sum would add per-request costs).
    super({ name, help, registers: [registry], aggregator: 'average' });
    this.read = read;
    this.gaugeName = name;
    this.gaugeHelp = help;
  }

  override get(): ReturnType<Gauge['get']> {
    const value = this.read();
    return Promise.resolve({
      name: this.gaugeName,
      help: this.gaugeHelp,
      type: GAUGE_TYPE,
      aggregator: 'average',
      collect: () => undefined,
      values: value === undefined ? [] : [{ value, labels: {} }],
    });
  }
}
