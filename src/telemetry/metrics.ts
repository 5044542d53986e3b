// Request metrics: the service_mesh_* traffic families of manifests/README.md (requests, duration, bytes,
// retries, rate-limited requests), counted once when a request finishes. The request path adds to plain numbers
// held per (reporter, source, destination, version) group and per outcome; prom-client reads them at scrape time.
// Measured: ~60-90 ns per request, against ~2 µs (and steady garbage) calling prom-client's inc()/observe().
//
// `reporter` says which proxy counted: `source` (an outbound listener, the caller's side) or `destination` (an
// inbound listener, the callee's side), as Istio does, so a request A→B seen by both is not counted twice by a
// query that picks one side. Retries and rate-limited requests are exported only once their stage registers.
import type { Registry } from 'prom-client';
import { AccumulatedHistogram, collectedCounter, HistogramCell } from './metrics-collected.ts';
import type { RequestRecord } from './types.ts';

/** What request metrics read of a finished request. */
export type RequestMetricsInput = Pick<
  RequestRecord,
  | 'direction'
  | 'sourceService'
  | 'destinationService'
  | 'destinationVersion'
  | 'status'
  | 'grpcStatus'
  | 'isGrpc'
  | 'flag'
  | 'startMs'
  | 'endMs'
  | 'requestBytes'
  | 'responseBytes'
>;

/** What the retry stage reports of a request it retries. */
export type RetryInput = Pick<
  RequestRecord,
  'direction' | 'sourceService' | 'destinationService' | 'destinationVersion'
>;

/** The contract's buckets (seconds); 1 s must stay a bound (the latency alert's threshold). */
export const DURATION_BUCKETS_S: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Label value for a service or version that is absent, or not a plausible name. */
export const UNKNOWN = 'unknown';
/** Label value for a service or version seen after its label's cap was reached. */
export const OTHER = 'other';

export interface RequestMetricsLimits {
  /** Distinct values each of source_service, destination_service and destination_version may take. */
  readonly valuesPerLabel: number;
  /** Distinct (source, destination, version) groups; later ones are counted under (other, other, other). */
  readonly groups: number;
}

export const DEFAULT_REQUEST_METRICS_LIMITS: RequestMetricsLimits = { valuesPerLabel: 256, groups: 4096 };

type ServiceLabel = 'reporter' | 'source_service' | 'destination_service' | 'destination_version';
type RequestLabel = ServiceLabel | 'response_code' | 'grpc_status' | 'response_flag';
type DurationLabel = ServiceLabel | 'response_flag';

const SERVICE_LABELS: readonly ServiceLabel[] = [
  'reporter',
  'source_service',
  'destination_service',
  'destination_version',
];

/** The `reporter` label: which side of the call counted it (Istio's values). */
export type Reporter = 'source' | 'destination';
/** Index of a direction's groups: outbound listeners report as the source, inbound as the destination. */
const OUTBOUND = 0;
const INBOUND = 1;
const REPORTERS: readonly Reporter[] = ['source', 'destination'];
const REQUEST_LABELS: readonly RequestLabel[] = [...SERVICE_LABELS, 'response_code', 'grpc_status', 'response_flag'];
const DURATION_LABELS: readonly DurationLabel[] = [...SERVICE_LABELS, 'response_flag'];

/** A name that may become a label value: printable ASCII, not too long. Anything else is UNKNOWN. */
const PLAUSIBLE_NAME = /^[\x20-\x7e]{1,128}$/;

/**
 * The values one label may take. Service names come from config, discovery and, on inbound listeners, the
 * caller's x-source-service header: a cap keeps a misbehaving caller from growing the series without bound.
 */
export class LabelDomain {
  private readonly values = new Set<string>();
  private readonly cap: number;

  constructor(cap: number) {
    this.cap = cap;
  }

  /** The label value for `raw`: itself, UNKNOWN (empty or implausible) or OTHER (new after the cap). */
  valueOf(raw: string): string {
    if (raw === '' || raw === UNKNOWN || !PLAUSIBLE_NAME.test(raw)) return UNKNOWN;
    if (this.values.has(raw)) return raw;
    if (this.values.size >= this.cap) return OTHER;
    this.values.add(raw);
    return raw;
  }
}

/** Response flags by index (0: none). Flags come from the proxy's own vocabulary; the cap is a safety net. */
const FLAG_SLOTS = 32;
/** gRPC label slots: 0 = not gRPC (or no status), 1 + status for 0..16. */
const GRPC_SLOTS = 18;
const GRPC_LABELS: readonly string[] = ['', ...Array.from({ length: GRPC_SLOTS - 1 }, (_, i) => String(i))];
/** Status codes outside HTTP's three digits (none sent, and not a downstream disconnect) count as "0". */
const MAX_STATUS = 999;

class OutcomeCell {
  readonly labels: Readonly<Record<RequestLabel, string>>;
  count = 0;
  constructor(labels: Readonly<Record<RequestLabel, string>>) {
    this.labels = labels;
  }
}

/** Everything counted for one (source, destination, version). */
class TrafficGroup {
  readonly labels: Readonly<Record<ServiceLabel, string>>;
  /** By outcome key: (status * GRPC_SLOTS + grpc slot) * FLAG_SLOTS + flag index. */
  readonly outcomes = new Map<number, OutcomeCell>();
  /** By flag index. */
  readonly durations: (HistogramCell<DurationLabel> | undefined)[] = new Array(FLAG_SLOTS).fill(undefined);
  requestBytes = 0;
  responseBytes = 0;
  retries = 0;
  rateLimited = 0;

  constructor(labels: Readonly<Record<ServiceLabel, string>>) {
    this.labels = labels;
  }
}

type ByVersion = Map<string, TrafficGroup>;
type ByDestination = Map<string, ByVersion>;
type BySource = Map<string, ByDestination>;

export class RequestMetrics {
  /** When false, finished requests and retries are not counted (telemetry.metrics.enabled). */
  enabled = true;
  private readonly sources: LabelDomain;
  private readonly destinations: LabelDomain;
  private readonly versions: LabelDomain;
  private readonly maxGroups: number;
  /** Per reporter (OUTBOUND, INBOUND): raw source → raw destination → raw version → group. Raw values that map
   *  to themselves are cached. */
  private readonly byReporter: readonly [BySource, BySource] = [new Map(), new Map()];
  /** Every group once, in creation order (the nested maps may reach one group under several raw values). */
  private readonly groups: TrafficGroup[] = [];
  private readonly flagIndex = new Map<string, number>([['', 0]]);
  private readonly flagNames: string[] = [''];
  private readonly registry: Registry;
  private retriesRegistered = false;
  private rateLimitsRegistered = false;

  constructor(registry: Registry, limits: RequestMetricsLimits = DEFAULT_REQUEST_METRICS_LIMITS) {
    this.sources = new LabelDomain(limits.valuesPerLabel);
    this.destinations = new LabelDomain(limits.valuesPerLabel);
    this.versions = new LabelDomain(limits.valuesPerLabel);
    this.maxGroups = limits.groups;
    this.registry = registry;
    const groups = this.groups;

    collectedCounter(
      registry,
      'service_mesh_requests_total',
      'Requests finished, counted once at the end of the request.',
      REQUEST_LABELS,
      (add) => {
        for (const g of groups) for (const cell of g.outcomes.values()) add(cell.labels, cell.count);
      },
    );
    new AccumulatedHistogram({
      name: 'service_mesh_request_duration_seconds',
      help: 'Time from accept to the last byte of the response, in seconds.',
      labelNames: DURATION_LABELS,
      buckets: DURATION_BUCKETS_S,
      registry,
      cells: function* () {
        for (const g of groups) for (const cell of g.durations) if (cell !== undefined) yield cell;
      },
    });
    collectedCounter(
      registry,
      'service_mesh_request_bytes_total',
      'Request body bytes received from downstream.',
      SERVICE_LABELS,
      (add) => {
        for (const g of groups) add(g.labels, g.requestBytes);
      },
    );
    collectedCounter(
      registry,
      'service_mesh_response_bytes_total',
      'Response body bytes sent downstream.',
      SERVICE_LABELS,
      (add) => {
        for (const g of groups) add(g.labels, g.responseBytes);
      },
    );
  }

  /**
   * The retry stage, when it is built: from then on service_mesh_retries_total is exported (0 until a retry).
   * Before, the family is absent: a 0 would say "no retries" where nothing was measuring them.
   */
  registerRetries(): void {
    if (this.retriesRegistered) return;
    this.retriesRegistered = true;
    const groups = this.groups;
    collectedCounter(
      this.registry,
      'service_mesh_retries_total',
      'Retry attempts (not counting the first try); destination_version is that of the attempt that failed.',
      SERVICE_LABELS,
      (add) => {
        for (const g of groups) add(g.labels, g.retries);
      },
    );
  }

  /** The rate-limit stage, when it is built: from then on service_mesh_rate_limited_requests_total is exported. */
  registerRateLimits(): void {
    if (this.rateLimitsRegistered) return;
    this.rateLimitsRegistered = true;
    const groups = this.groups;
    collectedCounter(
      this.registry,
      'service_mesh_rate_limited_requests_total',
      'Requests rejected by a rate limit (response_flag RL).',
      SERVICE_LABELS,
      (add) => {
        for (const g of groups) add(g.labels, g.rateLimited);
      },
    );
  }

  /** Once per finished request. */
  onRequestEnd(rec: RequestMetricsInput): void {
    if (!this.enabled) return;
    const g = this.group(
      rec.direction === 'inbound' ? INBOUND : OUTBOUND,
      rec.sourceService,
      rec.destinationService,
      rec.destinationVersion,
    );
    const flag = rec.flag;
    const f = flag === '' ? 0 : (this.flagIndex.get(flag) ?? this.addFlag(flag));
    let status = rec.status;
    if (flag === 'DC') status = 499;
    else if (!(status >= 0 && status <= MAX_STATUS)) status = 0;
    // Out-of-range gRPC statuses are UNKNOWN (2), as gRPC clients read them.
    const grpc = rec.isGrpc && rec.grpcStatus >= 0 ? (rec.grpcStatus < GRPC_SLOTS - 1 ? rec.grpcStatus + 1 : 3) : 0;
    const key = (status * GRPC_SLOTS + grpc) * FLAG_SLOTS + f;
    const outcome = g.outcomes.get(key) ?? this.addOutcome(g, key, status, grpc, f);
    outcome.count++;
    const durations = g.durations[f] ?? this.addDurations(g, f);
    const seconds = (rec.endMs - rec.startMs) / 1000;
    durations.observe(DURATION_BUCKETS_S, seconds > 0 ? seconds : 0);
    g.requestBytes += rec.requestBytes;
    g.responseBytes += rec.responseBytes;
    if (f !== 0 && flag === 'RL') g.rateLimited++;
  }

  /** A retry attempt, called by the retry stage before it picks the next endpoint. */
  onRetry(rec: RetryInput): void {
    if (!this.enabled) return;
    const r = rec.direction === 'inbound' ? INBOUND : OUTBOUND;
    this.group(r, rec.sourceService, rec.destinationService, rec.destinationVersion).retries++;
  }

  /** Distinct (source, destination, version) groups counted so far. */
  get groupCount(): number {
    return this.groups.length;
  }

  private group(reporter: number, source: string, destination: string, version: string): TrafficGroup {
    const bySource = this.byReporter[reporter];
    const byDestination = bySource.get(source) ?? this.addSource(bySource, source);
    const byVersion = byDestination.get(destination) ?? this.addDestination(byDestination, destination);
    return byVersion.get(version) ?? this.addGroup(reporter, source, destination, byVersion, version);
  }

  /** The nested map for a raw value's label value, cached under the raw value when it is its own label. */
  private addSource(bySource: BySource, raw: string): ByDestination {
    const label = this.sources.valueOf(raw);
    let node = bySource.get(label);
    if (node === undefined) bySource.set(label, (node = new Map()));
    if (cacheable(raw, label)) bySource.set(raw, node);
    return node;
  }

  private addDestination(byDestination: ByDestination, raw: string): ByVersion {
    const label = this.destinations.valueOf(raw);
    let node = byDestination.get(label);
    if (node === undefined) byDestination.set(label, (node = new Map()));
    if (cacheable(raw, label)) byDestination.set(raw, node);
    return node;
  }

  private addGroup(
    reporter: number,
    rawSource: string,
    rawDestination: string,
    byVersion: ByVersion,
    raw: string,
  ): TrafficGroup {
    const version = this.versions.valueOf(raw);
    let group = byVersion.get(version);
    if (group === undefined) {
      if (this.groups.length >= this.maxGroups) return this.overflowGroup(reporter);
      group = this.newGroup(
        reporter,
        byVersion,
        this.sources.valueOf(rawSource),
        this.destinations.valueOf(rawDestination),
        version,
      );
    }
    if (cacheable(raw, version)) byVersion.set(raw, group);
    return group;
  }

  /** Where new groups go once the group cap is reached: (other, other, other), one per reporter. Not cached
   *  under raw values. */
  private overflowGroup(reporter: number): TrafficGroup {
    const bySource = this.byReporter[reporter];
    let byDestination = bySource.get(OTHER);
    if (byDestination === undefined) bySource.set(OTHER, (byDestination = new Map()));
    let byVersion = byDestination.get(OTHER);
    if (byVersion === undefined) byDestination.set(OTHER, (byVersion = new Map()));
    return byVersion.get(OTHER) ?? this.newGroup(reporter, byVersion, OTHER, OTHER, OTHER);
  }

  private newGroup(
    reporter: number,
    byVersion: ByVersion,
    source: string,
    destination: string,
    version: string,
  ): TrafficGroup {
    const group = new TrafficGroup({
      reporter: REPORTERS[reporter],
      source_service: source,
      destination_service: destination,
      destination_version: version,
    });
    this.groups.push(group);
    byVersion.set(version, group);
    return group;
  }

  private addFlag(flag: string): number {
    if (this.flagNames.length >= FLAG_SLOTS - 1) return this.flagIndex.get(OTHER) ?? this.newFlag(OTHER);
    return this.newFlag(flag);
  }

  private newFlag(flag: string): number {
    const i = this.flagNames.length;
    this.flagNames.push(flag);
    this.flagIndex.set(flag, i);
    return i;
  }

  private addOutcome(g: TrafficGroup, key: number, status: number, grpc: number, f: number): OutcomeCell {
    const cell = new OutcomeCell({
      ...g.labels,
      response_code: String(status),
      grpc_status: GRPC_LABELS[grpc],
      response_flag: this.flagNames[f],
    });
    g.outcomes.set(key, cell);
    return cell;
  }

  private addDurations(g: TrafficGroup, f: number): HistogramCell<DurationLabel> {
    const cell = new HistogramCell<DurationLabel>(
      { ...g.labels, response_flag: this.flagNames[f] },
      DURATION_BUCKETS_S.length,
    );
    g.durations[f] = cell;
    return cell;
  }
}

/** A raw value is cached in a lookup map only when it names its own label (or is the empty "unknown"). */
function cacheable(raw: string, label: string): boolean {
  return raw === label || (raw === '' && label === UNKNOWN);
}
