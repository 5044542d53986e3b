// Mesh state that the resilience and identity stages report: circuit breakers, outlier ejections, active health
// checks and the workload certificate. Rare events, kept per cluster and summed (or, for breakers, OR-ed) into
// the contract's destination_service at scrape time. A family is registered only once its feeder registers or
// first reports (none is built yet: the resilience and mTLS work add them), so an absent family means "not
// measured" and never reads as a reassuring 0.
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge } from './metrics-collected.ts';

/** What these metrics need of a cluster: its name (the key) and its service (the label). */
export interface ClusterRef {
  readonly name: string;
  readonly service: string;
}

export type HealthCheckResult = 'success' | 'failure';

const DAY_MS = 86_400_000;

interface ClusterState {
  readonly name: string;
  readonly service: string;
  breakerOpen: boolean | undefined;
  ejections: number;
  /** Outlier detection is set up for this cluster: its ejections are exported from 0. */
  ejectionsWatched: boolean;
  healthChecks: Record<HealthCheckResult, number>;
  healthChecked: boolean;
}

export class MeshStateMetrics {
  /** By cluster name and service: a reload that changes a cluster's service starts new sums. */
  private readonly clusters = new Map<string, ClusterState>();
  /** SPIFFE id → the certificate's notBefore and notAfter (Unix ms). */
  private readonly certificates = new Map<string, { readonly notBeforeMs: number; readonly notAfterMs: number }>();
  private readonly registry: Registry;
  private readonly nowMs: () => number;
  /** Families registered so far: each one when its feeder first reports or registers, never before. */
  private readonly registered = new Set<string>();

  constructor(registry: Registry, nowMs: () => number = Date.now) {
    this.registry = registry;
    this.nowMs = nowMs;
  }

  /**
   * Outlier detection, when it is set up for a cluster: from then on service_mesh_outlier_ejections_total is
   * exported, and 0 for this cluster's service until an ejection (so the first one is an increase from 0).
   */
  registerOutlierDetection(cluster: ClusterRef): void {
    this.registerEjections();
    this.state(cluster).ejectionsWatched = true;
  }

  /** The health checker, when it starts checking a cluster: service_mesh_health_checks_total, 0 until a check. */
  registerHealthChecks(cluster: ClusterRef): void {
    this.registerHealthCheckFamily();
    this.state(cluster).healthChecked = true;
  }

  /** Before each scrape, for every cluster being served (proxy/stats.ts reads Cluster.circuitOpen). */
  setCircuitBreakerOpen(cluster: ClusterRef, open: boolean): void {
    this.registerBreakers();
    this.forgetCluster(cluster.name); // a reload may have moved the cluster to another service
    this.state(cluster).breakerOpen = open;
  }

  /** Outlier detection, once per ejected endpoint. */
  onOutlierEjection(cluster: ClusterRef): void {
    this.registerEjections();
    this.state(cluster).ejections++;
  }

  /** The health checker, once per check of one endpoint. */
  onHealthCheck(cluster: ClusterRef, result: HealthCheckResult): void {
    this.registerHealthCheckFamily();
    this.state(cluster).healthChecks[result]++;
  }

  /** A cluster removed by a reload: its breaker state no longer applies (its counts stay in the sums). */
  forgetCluster(name: string): void {
    for (const c of this.clusters.values()) if (c.name === name) c.breakerOpen = undefined;
  }

  /**
   * The workload certificate in use (after each rotation): its expiry (days left, computed at every scrape) and its
   * whole validity (notAfter − notBefore), which the expiry alert measures the days left against.
   */
  setCertificateExpiry(identity: string, notAfterMs: number, notBeforeMs: number): void {
    this.registerCertificates();
    this.certificates.set(identity, { notBeforeMs, notAfterMs });
  }

  /** A certificate no longer in use (its identity changed). */
  removeCertificate(identity: string): void {
    this.certificates.delete(identity);
  }

  private registerBreakers(): void {
    if (!this.first('service_mesh_circuit_breaker_open')) return;
    const clusters = this.clusters;
    collectedGauge(
      this.registry,
      'service_mesh_circuit_breaker_open',
      "1 while this proxy's breaker for the destination is open (requests get flag UO), else 0.",
      ['destination_service'],
      (set) => {
        const open = new Map<string, boolean>();
        for (const c of clusters.values())
          if (c.breakerOpen !== undefined) open.set(c.service, (open.get(c.service) ?? false) || c.breakerOpen);
        for (const [service, isOpen] of open) set({ destination_service: service }, isOpen ? 1 : 0);
      },
    );
  }

  private registerCertificates(): void {
    if (!this.first('service_mesh_certificate_expiry_days')) return;
    collectedGauge(
      this.registry,
      'service_mesh_certificate_expiry_days',
      "Days until the proxy's workload certificate expires (fractional; negative once expired).",
      ['identity'],
      (set) => {
        const now = this.nowMs();
        for (const [identity, { notAfterMs }] of this.certificates) set({ identity }, (notAfterMs - now) / DAY_MS);
      },
    );
    collectedGauge(
      this.registry,
      'skein_certificate_validity_days',
      "The whole validity of the proxy's workload certificate (notAfter - notBefore), in days.",
      ['identity'],
      (set) => {
        for (const [identity, { notBeforeMs, notAfterMs }] of this.certificates)
          set({ identity }, (notAfterMs - notBeforeMs) / DAY_MS);
      },
    );
  }

  private registerEjections(): void {
    if (!this.first('service_mesh_outlier_ejections_total')) return;
    const clusters = this.clusters;
    collectedCounter(
      this.registry,
      'service_mesh_outlier_ejections_total',
      'Endpoints ejected by outlier detection.',
      ['destination_service'],
      (add) => {
        const watched = (c: ClusterState) => c.ejectionsWatched || c.ejections > 0;
        for (const [service, n] of sumByService(clusters, (c) => c.ejections, watched))
          add({ destination_service: service }, n);
      },
    );
  }

  private registerHealthCheckFamily(): void {
    if (!this.first('service_mesh_health_checks_total')) return;
    const clusters = this.clusters;
    collectedCounter(
      this.registry,
      'service_mesh_health_checks_total',
      'Active health checks of endpoints, by result.',
      ['destination_service', 'result'],
      (add) => {
        // Both results once a cluster is checked, so the first failure is an increase from 0.
        const checked = (c: ClusterState) => c.healthChecked || c.healthChecks.success + c.healthChecks.failure > 0;
        for (const result of ['success', 'failure'] as const)
          for (const [service, n] of sumByService(clusters, (c) => c.healthChecks[result], checked))
            add({ destination_service: service, result }, n);
      },
    );
  }

  /** True the first time a family is asked for (the caller registers it then). */
  private first(family: string): boolean {
    if (this.registered.has(family)) return false;
    this.registered.add(family);
    return true;
  }

  private state(cluster: ClusterRef): ClusterState {
    const key = `${cluster.name}\n${cluster.service}`;
    let c = this.clusters.get(key);
    if (c === undefined) {
      c = {
        name: cluster.name,
        service: cluster.service,
        breakerOpen: undefined,
        ejections: 0,
        ejectionsWatched: false,
        healthChecks: { success: 0, failure: 0 },
        healthChecked: false,
      };
      this.clusters.set(key, c);
    }
    return c;
  }
}

function sumByService(
  clusters: Map<string, ClusterState>,
  value: (c: ClusterState) => number,
  include: (c: ClusterState) => boolean,
): Map<string, number> {
  const sums = new Map<string, number>();
  for (const c of clusters.values()) if (include(c)) sums.set(c.service, (sums.get(c.service) ?? 0) + value(c));
  return sums;
}
