// prom-client families whose values are accumulated elsewhere and read at scrape time: counters and gauges
// through collect(), histograms from HistogramCells. prom-client's own inc()/observe() hash the label set on
// every call (≈2 µs per request for the request families); a cell the caller already holds costs a few adds.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** One label set's observations: per-bucket counts (not cumulative; the last slot is above every bound). */
export class HistogramCell<L extends string = string> {
  readonly labels: Readonly<Record<L, string>>;
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(labels: Readonly<Record<L, string>>, boundCount: number) {
    this.labels = labels;
    this.buckets = new Float64Array(boundCount + 1);
  }

  observe(bounds: readonly number[], value: number): void {
    this.buckets[bucketIndex(bounds, value)]++;
    this.sum += value;
    this.count++;
  }
}

/**
 * Index of the first bound >= value (Prometheus buckets are "less than or equal"); bounds.length when the
 * value is above them all. Linear: request durations are mostly in the first few buckets.
 */
export function bucketIndex(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]) i++;
  return i;
}

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels: Readonly<Record<string, string>>;
  metricName: string;
}

export interface AccumulatedHistogramOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  buckets: readonly number[];
  registry: Registry;
  /** The cells to expose, read at every scrape. */
  cells: () => Iterable<HistogramCell<L>>;
}

/**
 * A prom-client Histogram whose values come from HistogramCells instead of observe(). The registry asks a
 * histogram for its samples through getForPromString() (text), and Histogram.get() (JSON) through it too: both
 * answer from the cells, in the shape prom-client's own Histogram produces, so the text is what it would print.
 */
export class AccumulatedHistogram<L extends string> extends Histogram<L> {
  private readonly familyName: string;
  private readonly familyHelp: string;
  private readonly bounds: readonly number[];
  private readonly cells: () => Iterable<HistogramCell<L>>;

  constructor(opts: AccumulatedHistogramOptions<L>) {
    super({
      name: opts.name,
      help: opts.help,
      labelNames: opts.labelNames,
      buckets: [...opts.buckets],
      registers: [opts.registry],
    });
    this.familyName = opts.name;
    this.familyHelp = opts.help;
    this.bounds = opts.buckets;
    this.cells = opts.cells;
  }

  /** What the registry renders as text: bucket, sum and count samples with the cell's labels shared. */
  getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const name = this.familyName;
    const help = this.familyHelp;
    const bucketName = `${name}_bucket`;
    const values: Sample[] = [];
    for (const cell of this.cells()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.buckets[i];
        values.push({
          value: cumulative,
          labels: { le: this.bounds[i] },
          sharedLabels: cell.labels,
          metricName: bucketName,
        });
      }
      values.push({ value: cell.count, labels: { le: '+Inf' }, sharedLabels: cell.labels, metricName: bucketName });
      values.push({ value: cell.sum, labels: {}, sharedLabels: cell.labels, metricName: `${name}_sum` });
      values.push({ value: cell.count, labels: {}, sharedLabels: cell.labels, metricName: `${name}_count` });
    }
    return Promise.resolve({ name, help, type: 'histogram', values, aggregator: 'sum' });
  }
}

/** A prom-client Counter whose samples are read from accumulated numbers at every scrape. */
export function collectedCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: (add: (labels: Readonly<Record<L, string>>, value: number) => void) => void,
): Counter<L> {
  return new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

/** A prom-client Gauge whose samples are read at every scrape (a family with no labels: pass `{}`). */
export function collectedGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: (set: (labels: Readonly<Record<L, string>>, value: number) => void) => void,
): Gauge<L> {
  return new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      read((labels, value) => this.set(labels, value));
    },
  });
}
