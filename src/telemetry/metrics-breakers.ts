// The circuit-breaking families, read at scrape time from the clusters being served: overflows by threshold
// (counted as they happen, by cluster name, so a reload that rebuilds a cluster does not reset them), each
// endpoint breaker's state, and the contract's service_mesh_circuit_breaker_open through MeshStateMetrics.
import type { Registry } from 'prom-client';
import type { BreakerState } from '../resilience/breaker.ts';
import { type Threshold, THRESHOLDS } from '../resilience/cluster-limits.ts';
import { collectedCounter, collectedGauge } from './metrics-collected.ts';
import type { ClusterRef, MeshStateMetrics } from './metrics-state.ts';

/** What these families read of a cluster being served (proxy/cluster.ts Cluster). */
export interface BreakerSource extends ClusterRef {
  /** At a threshold, or an endpoint breaker open or half-open (Cluster.circuitOpen). */
  readonly circuitOpen: boolean;
  readonly hasEndpointBreakers: boolean;
  breakerStates(): Iterable<[endpoint: string, state: BreakerState]>;
}

/** skein_circuit_breaker_state's encoding: how far the breaker is from letting everything through. */
const STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 };

export class CircuitBreakerMetrics {
  private readonly registry: Registry;
  private readonly state: MeshStateMetrics;
  /** Overflows by cluster name and threshold. */
  private readonly overflows = new Map<string, Record<Threshold, number>>();
  private clusters: (() => Iterable<BreakerSource>) | null = null;
  private endpointStatesRegistered = false;

  constructor(registry: Registry, state: MeshStateMetrics) {
    this.registry = registry;
    this.state = state;
  }

  /**
   * The clusters being served, from now on. Every cluster has thresholds (Envoy's defaults when not
   * configured), so skein_upstream_overflow_total (0 per cluster and threshold until one refuses a request)
   * and service_mesh_circuit_breaker_open are exported from here on; skein_circuit_breaker_state from the first
   * cluster with endpoint breakers.
   */
  watch(clusters: () => Iterable<BreakerSource>): void {
    const first = this.clusters === null;
    this.clusters = clusters;
    if (!first) return;
    const overflows = this.overflows;
    collectedCounter(
      this.registry,
      'skein_upstream_overflow_total',
      "Requests refused at once (503, flag UO) by a cluster's circuit-breaking threshold.",
      ['cluster', 'threshold'],
      (add) => {
        const seen = new Set<string>();
        for (const c of clusters()) {
          seen.add(c.name);
          const counts = overflows.get(c.name);
          for (const threshold of THRESHOLDS) add({ cluster: c.name, threshold }, counts?.[threshold] ?? 0);
        }
        // A cluster gone from the config keeps its counts: counters never go backwards.
        for (const [cluster, counts] of overflows)
          if (!seen.has(cluster)) for (const threshold of THRESHOLDS) add({ cluster, threshold }, counts[threshold]);
      },
    );
  }

  onOverflow(cluster: string, threshold: Threshold): void {
    let counts = this.overflows.get(cluster);
    if (counts === undefined) {
      counts = { max_connections: 0, max_pending_requests: 0, max_requests: 0, max_retries: 0 };
      this.overflows.set(cluster, counts);
    }
    counts[threshold]++;
  }

  /** Before a scrape: whether each cluster's breaker is open, for the contract's gauge. */
  refresh(): void {
    const clusters = this.clusters;
    if (clusters === null) return;
    for (const c of clusters()) {
      this.state.setCircuitBreakerOpen(c, c.circuitOpen);
      if (c.hasEndpointBreakers) this.registerEndpointStates(clusters);
    }
  }

  private registerEndpointStates(clusters: () => Iterable<BreakerSource>): void {
    if (this.endpointStatesRegistered) return;
    this.endpointStatesRegistered = true;
    collectedGauge(
      this.registry,
      'skein_circuit_breaker_state',
      "Each endpoint's circuit breaker: 0 closed, 1 half-open (probes let through), 2 open (skipped by the pick).",
      ['cluster', 'endpoint'],
      (set) => {
        for (const c of clusters())
          if (c.hasEndpointBreakers)
            for (const [endpoint, state] of c.breakerStates()) set({ cluster: c.name, endpoint }, STATE_VALUE[state]);
      },
    );
  }
}
