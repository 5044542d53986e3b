// The proxy's metrics, served on the admin listener's /metrics from one prom-client Registry per ProxyServer:
// the service_mesh_* traffic and mesh-state families of manifests/README.md (src/telemetry/metrics*.ts), and the
// skein_* families about this process itself (connections, listeners, config, its own overhead). Listeners, pools
// and stages call the methods here; each is a few additions, and prom-client reads the numbers when Prometheus
// scrapes. A family whose feeder is not built is not registered: stages register theirs when they are built.
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { RequestMetrics, type RequestMetricsInput, type RetryInput } from '../src/telemetry/metrics.ts';
import { collectedCounter, collectedGauge } from '../src/telemetry/metrics-collected.ts';
import { type OverheadInput, ProxyOverheadMetrics } from '../src/telemetry/metrics-overhead.ts';
import { type BreakerSource, CircuitBreakerMetrics } from '../src/telemetry/metrics-breakers.ts';
import { type MirrorCounts, MirrorMetrics } from '../src/telemetry/metrics-mirror.ts';
import { type ClusterRef, type HealthCheckResult, MeshStateMetrics } from '../src/telemetry/metrics-state.ts';
import type { Threshold } from '../src/resilience/cluster-limits.ts';
import type { RequestRecord } from '../src/telemetry/types.ts';
import type { UpstreamEvent } from './cluster.ts';
import type { HealthEvent } from './cluster-health.ts';
import type { MetricFamilies } from './workers-aggregate.ts';

export type { ClusterRef, HealthCheckResult } from '../src/telemetry/metrics-state.ts';
export type { BreakerSource } from '../src/telemetry/metrics-breakers.ts';

/** Where this proxy stands with control's config stream (absent until a control client reports). */
export const CONFIG_PUSH_STATES = ['connecting', 'synced', 'rejected', 'disconnected'] as const;
export type ConfigPushState = (typeof CONFIG_PUSH_STATES)[number];

/** What the endpoint gauges read of a cluster at scrape time. */
export interface ClusterEndpointCounts {
  readonly name: string;
  readonly health: { readonly healthyCount: number; readonly ejectedCount: number };
}

export interface ProxyStatsOptions {
  /** telemetry.metrics.enabled: when false, per-request families (requests, durations, bytes, retries, proxy
   *  overhead) stay empty. */
  metricsEnabled?: boolean;
  /** Node's process_* and nodejs_* metrics (shared by every ProxyStats of the process). Default true. */
  processMetrics?: boolean;
}

interface ConnectionCounts {
  active: number;
  total: number;
}

/** Counts by one extra label value (protocol error code, response flag) under a listener. */
type CountsBy = Map<string, number>;

export class ProxyStats {
  readonly registry = new Registry();
  /** Requests started and not yet finished, across listeners; drain waits for it to reach 0. */
  inFlight = 0;
  configVersion = 0;
  /** The served Snapshot's content hash (skein_config_info{hash}); empty before the first config. */
  configHash = '';
  configReloadFailures = 0;
  private readonly requests: RequestMetrics;
  private readonly state: MeshStateMetrics;
  private readonly overhead: ProxyOverheadMetrics;
  private readonly breakers: CircuitBreakerMetrics;
  private readonly mirrors: MirrorMetrics;
  private readonly downstream = new Map<string, ConnectionCounts>();
  private readonly upstream = new Map<string, ConnectionCounts>();
  private readonly protocolErrors = new Map<string, CountsBy>();
  private readonly tcpConnections = new Map<string, CountsBy>();
  private pushState: ConfigPushState | undefined = undefined;
  private readonly pushes = { accepted: 0, rejected: 0 };
  private configPushesRegistered = false;
  private rateLimitRedis: Record<'allowed' | 'limited' | 'error', { observe(v: number): void }> | null = null;
  private readonly processMetrics: boolean;
  /** mTLS handshakes by `direction|result` (result: ok, or why the peer was refused). */
  private readonly mtlsHandshakes = new Map<string, number>();
  private mtlsRegistered = false;
  private readonly upstreamEvents = new Map<string, { keepaliveRetries: number; protocolDowngrades: number }>();
  /** Per cluster name (survives the cluster being rebuilt by a reload, so the counters never go back). */
  private readonly healthCounts = new Map<string, { success: number; failure: number; ejections: number }>();
  private readonly healthFamilies = { checks: false, ejections: false, endpoints: false };

  constructor(opts: ProxyStatsOptions = {}) {
    this.requests = new RequestMetrics(this.registry);
    this.requests.enabled = opts.metricsEnabled ?? true;
    this.state = new MeshStateMetrics(this.registry);
    this.breakers = new CircuitBreakerMetrics(this.registry, this.state);
    this.overhead = new ProxyOverheadMetrics(this.registry);
    this.mirrors = new MirrorMetrics(this.registry);
    this.overhead.enabled = this.requests.enabled;
    this.processMetrics = opts.processMetrics ?? true;
    this.registerProxyFamilies();
    this.registerUpstreamEventFamilies();
  }

  /** telemetry.metrics.enabled; the server sets it on every config apply. */
  get metricsEnabled(): boolean {
    return this.requests.enabled;
  }
  set metricsEnabled(enabled: boolean) {
    this.requests.enabled = enabled;
    this.overhead.enabled = enabled;
  }

  /** Once per finished HTTP request (`listener` is also rec.listenerName, passed to spare a getter call). */
  onRequestEnd(listener: string, rec: RequestMetricsInput & OverheadInput): void {
    this.requests.onRequestEnd(rec);
    this.overhead.onRequestEnd(listener, rec);
  }

  /** The retry stage, when it is built: service_mesh_retries_total is exported from then on. */
  registerRetries(): void {
    this.requests.registerRetries();
  }

  /** The retry stage, once per retry attempt, before picking the next endpoint. */
  onRetry(rec: RetryInput): void {
    this.requests.onRetry(rec);
  }

  /** The mirror stage, when it is built: skein_mirror_requests_total is exported from then on. */
  registerMirrors(): void {
    this.mirrors.register();
  }

  /** The mirror stage: the counts of one route's copies to one cluster, by outcome (it adds to them). */
  mirrorCounts(listener: string, route: string, cluster: string): MirrorCounts {
    return this.mirrors.countsFor(listener, route, cluster);
  }

  /** The rate-limit stage, when it is built: service_mesh_rate_limited_requests_total is exported from then on. */
  registerRateLimits(): void {
    this.requests.registerRateLimits();
  }

  /** How long a global rate limit's Redis check took, by what it came to (allowed, limited, error). Registered
   *  on the first check (a proxy with no global limit has no such family). */
  observeRateLimitRedis(seconds: number, result: 'allowed' | 'limited' | 'error'): void {
    let h = this.rateLimitRedis;
    if (h === null) {
      const histogram = new Histogram({
        name: 'skein_ratelimit_redis_seconds',
        help: "Time a global rate limit's check in Redis added to a request (round trip, or until it failed).",
        labelNames: ['result'],
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
        registers: [this.registry],
      });
      // One child per result, bound once: an observation is then a few additions.
      h = {
        allowed: histogram.labels('allowed'),
        limited: histogram.labels('limited'),
        error: histogram.labels('error'),
      };
      this.rateLimitRedis = h;
    }
    h[result].observe(seconds);
  }

  /** Outlier detection set up for a cluster: ejections are exported (0 for its service until one). */
  registerOutlierDetection(cluster: ClusterRef): void {
    this.state.registerOutlierDetection(cluster);
    this.clusterHealthCounts(cluster.name);
    if (this.healthFamilies.ejections) return;
    this.healthFamilies.ejections = true;
    collectedCounter(
      this.registry,
      'skein_outlier_ejections_total',
      'Endpoints ejected by outlier detection, by cluster.',
      ['cluster'],
      (add) => {
        for (const [cluster, c] of this.healthCounts) add({ cluster }, c.ejections);
      },
    );
  }

  /** Active health checking started for a cluster: health checks are exported (0 until one). */
  registerHealthChecks(cluster: ClusterRef): void {
    this.state.registerHealthChecks(cluster);
    this.clusterHealthCounts(cluster.name);
    if (this.healthFamilies.checks) return;
    this.healthFamilies.checks = true;
    collectedCounter(
      this.registry,
      'skein_health_checks_total',
      'Active health checks of endpoints, by cluster and result (success, failure).',
      ['cluster', 'result'],
      (add) => {
        for (const [cluster, c] of this.healthCounts) {
          add({ cluster, result: 'success' }, c.success);
          add({ cluster, result: 'failure' }, c.failure);
        }
      },
    );
  }

  /** A cluster's health checker and outlier detection report here (proxy/cluster-health.ts). */
  onClusterHealthEvent(cluster: ClusterRef, event: HealthEvent): void {
    if (event === 'ejection') this.onOutlierEjection(cluster);
    else this.onHealthCheck(cluster, event === 'check-success' ? 'success' : 'failure');
  }

  /**
   * The server, once: skein_endpoints_healthy and skein_endpoints_ejected read every cluster it serves at scrape
   * time (every cluster has them: without checks or outlier detection, all its endpoints are healthy).
   */
  watchEndpoints(clusters: () => Iterable<ClusterEndpointCounts>): void {
    if (this.healthFamilies.endpoints) return;
    this.healthFamilies.endpoints = true;
    collectedGauge(
      this.registry,
      'skein_endpoints_healthy',
      "Endpoints in the cluster's load-balancing set: passing active health checks and not ejected.",
      ['cluster'],
      (set) => {
        for (const c of clusters()) set({ cluster: c.name }, c.health.healthyCount);
      },
    );
    collectedGauge(
      this.registry,
      'skein_endpoints_ejected',
      'Endpoints ejected by outlier detection now.',
      ['cluster'],
      (set) => {
        for (const c of clusters()) set({ cluster: c.name }, c.health.ejectedCount);
      },
    );
  }

  private clusterHealthCounts(name: string): { success: number; failure: number; ejections: number } {
    let c = this.healthCounts.get(name);
    if (c === undefined) this.healthCounts.set(name, (c = { success: 0, failure: 0, ejections: 0 }));
    return c;
  }

  onTcpConnectionEnd(listener: string, flag: string): void {
    countBy(this.tcpConnections, listener, flag);
  }

  downstreamConnections(listener: string, delta: number): void {
    addConnection(this.downstream, listener, delta);
  }

  /** The upstream pools: +1 when a connection to an endpoint of `cluster` opens, -1 when it closes. */
  upstreamConnections(cluster: string, delta: number): void {
    addConnection(this.upstream, cluster, delta);
  }

  /** The upstream pools: a transparent re-send (keep-alive close race) or an endpoint that refused HTTP/2. */
  upstreamEvent(cluster: string, event: UpstreamEvent): void {
    let c = this.upstreamEvents.get(cluster);
    if (c === undefined) this.upstreamEvents.set(cluster, (c = { keepaliveRetries: 0, protocolDowngrades: 0 }));
    if (event === 'keepalive-retry') c.keepaliveRetries++;
    else c.protocolDowngrades++;
  }

  onProtocolError(listener: string, code: string): void {
    countBy(this.protocolErrors, listener, code);
  }

  setCircuitBreakerOpen(cluster: ClusterRef, open: boolean): void {
    this.state.setCircuitBreakerOpen(cluster, open);
  }

  /** The server, once: the clusters being served, read at each scrape by the circuit-breaking families. */
  watchCircuitBreakers(clusters: () => Iterable<BreakerSource>): void {
    this.breakers.watch(clusters);
  }

  /** A cluster's circuit-breaking threshold refused a request (skein_upstream_overflow_total). */
  upstreamOverflow(cluster: string, threshold: Threshold): void {
    this.breakers.onOverflow(cluster, threshold);
  }

  onOutlierEjection(cluster: ClusterRef): void {
    this.state.onOutlierEjection(cluster);
    this.clusterHealthCounts(cluster.name).ejections++;
  }

  onHealthCheck(cluster: ClusterRef, result: HealthCheckResult): void {
    this.state.onHealthCheck(cluster, result);
    this.clusterHealthCounts(cluster.name)[result]++;
  }

  /** A cluster removed by a reload: its breaker state stops being exported. */
  forgetCluster(name: string): void {
    this.state.forgetCluster(name);
  }

  /**
   * One mTLS handshake's outcome: `ok`, or why the peer was refused (no-certificate, untrusted-chain, expired,
   * not-yet-valid, revoked, no-spiffe-id, wrong-trust-domain, unexpected-identity, plaintext on a strict
   * listener, handshake-error). The family appears with the first.
   */
  mtlsHandshake(direction: 'inbound' | 'outbound', result: string): void {
    if (!this.mtlsRegistered) {
      this.mtlsRegistered = true;
      const counts = this.mtlsHandshakes;
      collectedCounter(
        this.registry,
        'skein_mtls_handshakes_total',
        'mTLS handshakes by direction (inbound: as server, outbound: to an upstream) and result: ok, or why the peer was refused.',
        ['direction', 'result'],
        (add) => {
          for (const [key, n] of counts) {
            const bar = key.indexOf('|');
            add({ direction: key.slice(0, bar), result: key.slice(bar + 1) }, n);
          }
        },
      );
    }
    const key = `${direction}|${result}`;
    this.mtlsHandshakes.set(key, (this.mtlsHandshakes.get(key) ?? 0) + 1);
  }

  /**
   * The workload certificate (after each rotation): expiry days are computed at every scrape; its validity
   * (notAfter − notBefore) is exported beside them.
   */
  setCertificateExpiry(identity: string, notAfterMs: number, notBeforeMs: number): void {
    this.state.setCertificateExpiry(identity, notAfterMs, notBeforeMs);
  }

  removeCertificate(identity: string): void {
    this.state.removeCertificate(identity);
  }

  /** The control client, on every change of its stream's state (first 'connecting': the push families appear). */
  setConfigPushState(state: ConfigPushState): void {
    this.registerConfigPushes();
    this.pushState = state;
  }

  /** The control client, once per pushed Snapshot: ACKed (applied) or NACKed (rejected, the last good one kept). */
  onConfigPush(accepted: boolean): void {
    this.registerConfigPushes();
    if (accepted) this.pushes.accepted++;
    else this.pushes.rejected++;
  }

  /** The config stream's families, from the control client's first report (no control client, no family). */
  private registerConfigPushes(): void {
    if (this.configPushesRegistered) return;
    this.configPushesRegistered = true;
    const r = this.registry;
    collectedGauge(
      r,
      'skein_config_push_state',
      "One-hot: this proxy's state on control's config stream (connecting, synced, rejected, disconnected).",
      ['state'],
      (set) => {
        if (this.pushState === undefined) return;
        for (const state of CONFIG_PUSH_STATES) set({ state }, state === this.pushState ? 1 : 0);
      },
    );
    collectedCounter(
      r,
      'skein_config_pushes_total',
      'Config snapshots pushed by control, by result (accepted: applied and ACKed; rejected: NACKed).',
      ['result'],
      (add) => {
        add({ result: 'accepted' }, this.pushes.accepted);
        add({ result: 'rejected' }, this.pushes.rejected);
      },
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text exposition: this proxy's registry, then the process metrics. */
  async render(): Promise<string> {
    this.breakers.refresh();
    const own = await this.registry.metrics();
    return this.processMetrics ? `${own}\n${await processRegistry().metrics()}` : own;
  }

  /** The families render() prints, as prom-client JSON: what a worker of `--workers N` gives the primary to merge. */
  async metricsAsJSON(): Promise<MetricFamilies> {
    this.breakers.refresh();
    const own = await this.registry.getMetricsAsJSON();
    return this.processMetrics ? [...own, ...(await processRegistry().getMetricsAsJSON())] : own;
  }

  private registerProxyFamilies(): void {
    const r = this.registry;
    collectedGauge(r, 'skein_requests_active', 'Requests in flight.', [], (set) => set({}, this.inFlight));
    collectedGauge(r, 'skein_downstream_connections_active', 'Open downstream connections.', ['listener'], (set) => {
      for (const [listener, c] of this.downstream) set({ listener }, c.active);
    });
    collectedCounter(
      r,
      'skein_downstream_connections_total',
      'Downstream connections accepted.',
      ['listener'],
      (add) => {
        for (const [listener, c] of this.downstream) add({ listener }, c.total);
      },
    );
    collectedGauge(
      r,
      'skein_upstream_connections_active',
      'Open connections to upstream endpoints.',
      ['cluster'],
      (set) => {
        for (const [cluster, c] of this.upstream) set({ cluster }, c.active);
      },
    );
    collectedCounter(
      r,
      'skein_upstream_connections_total',
      'Connections opened to upstream endpoints.',
      ['cluster'],
      (add) => {
        for (const [cluster, c] of this.upstream) add({ cluster }, c.total);
      },
    );
    collectedCounter(
      r,
      'skein_downstream_protocol_errors_total',
      'Malformed requests rejected, by parser error code.',
      ['listener', 'code'],
      (add) => {
        for (const [listener, byCode] of this.protocolErrors)
          for (const [code, n] of byCode) add({ listener, code }, n);
      },
    );
    collectedCounter(
      r,
      'skein_tcp_connections_total',
      'TCP passthrough connections finished, by response flag.',
      ['listener', 'response_flag'],
      (add) => {
        for (const [listener, byFlag] of this.tcpConnections)
          for (const [flag, n] of byFlag) add({ listener, response_flag: flag }, n);
      },
    );
    collectedGauge(r, 'skein_config_version', 'Version of the Snapshot being served.', [], (set) =>
      set({}, this.configVersion),
    );
    collectedGauge(
      r,
      'skein_config_info',
      'Always 1; hash is the sha256 of the served config (canonical JSON), as /config shows it.',
      ['hash'],
      (set) => {
        if (this.configHash !== '') set({ hash: this.configHash }, 1);
      },
    );
    collectedCounter(
      r,
      'skein_config_reload_failures_total',
      'Config reloads rejected (the previous config kept serving).',
      [],
      (add) => add({}, this.configReloadFailures),
    );
  }

  /** skein_upstream_* protocol events, per cluster; a cluster appears once something happened to it. */
  private registerUpstreamEventFamilies(): void {
    const events = this.upstreamEvents;
    collectedCounter(
      this.registry,
      'skein_upstream_keepalive_retries_total',
      'Requests sent again on a fresh connection after a reused keep-alive connection closed before any response byte.',
      ['cluster'],
      (add) => {
        for (const [cluster, c] of events) if (c.keepaliveRetries > 0) add({ cluster }, c.keepaliveRetries);
      },
    );
    collectedCounter(
      this.registry,
      'skein_upstream_protocol_downgrades_total',
      'protocol: auto endpoints found to refuse HTTP/2 (h2c) and sent HTTP/1.1 until the next probe.',
      ['cluster'],
      (add) => {
        for (const [cluster, c] of events) if (c.protocolDowngrades > 0) add({ cluster }, c.protocolDowngrades);
      },
    );
  }
}

function addConnection(m: Map<string, ConnectionCounts>, key: string, delta: number): void {
  let c = m.get(key);
  if (c === undefined) m.set(key, (c = { active: 0, total: 0 }));
  c.active += delta;
  if (delta > 0) c.total += delta;
}

function countBy(m: Map<string, CountsBy>, key: string, value: string): void {
  let by = m.get(key);
  if (by === undefined) m.set(key, (by = new Map()));
  by.set(value, (by.get(value) ?? 0) + 1);
}

/** Node's process metrics, once per process: they describe the process, and their monitors are never stopped. */
let processRegistryInstance: Registry | undefined;
function processRegistry(): Registry {
  if (processRegistryInstance === undefined) {
    processRegistryInstance = new Registry();
    collectDefaultMetrics({ register: processRegistryInstance });
  }
  return processRegistryInstance;
}
