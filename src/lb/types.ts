// The load-balancer interface every policy implements (one file per policy, looked up in registry.ts).
// A cluster feeds a balancer its current healthy endpoints with update(); the request path only calls pick().
// Policies precompute what they can in update() (tables, rings) so pick() is cheap and allocation-free.

/** One upstream endpoint as balancers see it. `active` is maintained by the pool (requests in flight). */
export interface LbEndpoint {
  /** Stable identity, "host:port". */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Relative weight, >= 1. */
  readonly weight: number;
  /** Requests in flight to this endpoint; read by least-request. */
  active: number;
}

/** What a pick may depend on, computed by the cluster from the request. */
export interface PickContext {
  /** consistent-hash: the hashed value of the configured header / cookie / source IP; undefined = no key. */
  hashKey?: string;
}

export interface LoadBalancer {
  /** Replace the endpoint set. Called at config compile time and on discovery changes, never per request. */
  update(endpoints: readonly LbEndpoint[]): void;
  /** Choose an endpoint, or undefined when there is none. */
  pick(ctx: PickContext): LbEndpoint | undefined;
}

export interface LbOptions {
  /** consistent-hash: lookup table size (Maglev) or ring size; a prime is best. */
  tableSize?: number;
  /** Source of randomness in [0, 1); tests inject a seeded one. Defaults to the shared generator in fast-random.ts. */
  random?: () => number;
}

export type LoadBalancerFactory = (options: LbOptions) => LoadBalancer;
