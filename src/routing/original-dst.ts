// Routing by original destination (transparent capture, proxy/original-dst.ts): a listener with `originalDst:
// true` sends a request that none of its routes matched to the cluster whose `serviceAddresses` hold the address
// the client dialed (a Service's cluster IP and port), else to the listener's `cluster` (usually one with
// `discovery: { type: original-dst }`: Istio's PassthroughCluster). Compiled once per Snapshot into one Map whose
// values are ready routes, so a request costs one Map get and the stages after the route see a route as usual.
import type { ClusterConfig, RouteConfig } from '../config/schema.ts';
import { originalDstKey } from '../discovery/address.ts';
import { compileRoute, type CompiledRoute } from './match.ts';

export interface OriginalDstTable<C> {
  /** "ip:port" (originalDstKey's form) → the route to the cluster that claims it. */
  readonly byAddress: ReadonlyMap<string, CompiledRoute<C>>;
  /** Destinations no cluster claims. */
  readonly fallback: CompiledRoute<C>;
}

/** The route a request to `key` takes; the fallback when the key is unknown or absent (not redirected). */
export function routeByOriginalDst<C>(table: OriginalDstTable<C>, key: string | undefined): CompiledRoute<C> {
  return (key === undefined ? undefined : table.byAddress.get(key)) ?? table.fallback;
}

function routeTo<C>(name: string, cluster: string, resolve: (cluster: string) => C): CompiledRoute<C> {
  const config: RouteConfig = { name, cluster, priority: 0, match: { headers: [] } };
  return compileRoute(config, -1, resolve);
}

export function compileOriginalDstTable<C>(
  clusters: readonly ClusterConfig[],
  fallbackCluster: string,
  resolve: (cluster: string) => C,
): OriginalDstTable<C> {
  const byAddress = new Map<string, CompiledRoute<C>>();
  for (const c of clusters) {
    if (c.serviceAddresses === undefined) continue;
    // One route per cluster (its name is what the access log shows), shared by all of its addresses.
    const route = routeTo(`original-dst:${c.name}`, c.name, resolve);
    for (const a of c.serviceAddresses) byAddress.set(originalDstKey(a), route);
  }
  return { byAddress, fallback: routeTo(`original-dst:${fallbackCluster}`, fallbackCluster, resolve) };
}
