// Compiles a validated Config into an immutable Snapshot: routes ordered and their matchers built, weighted
// splits turned into pick tables, clusters created (or reused from the previous Snapshot by the caller's
// factory). A reload builds a new Snapshot and swaps one reference; requests in flight keep the old one.
import { compileRoutes, type RouteTable } from '../routing/match.ts';
import type { ClusterConfig, Config, ListenerConfig } from './schema.ts';

export interface CompiledListener<C> {
  readonly config: ListenerConfig;
  readonly routes: RouteTable<C>;
  /** protocol tcp: the one cluster. */
  readonly tcpCluster: C | undefined;
}

export interface Snapshot<C> {
  readonly version: number;
  readonly config: Config;
  readonly createdAt: Date;
  readonly listeners: ReadonlyMap<string, CompiledListener<C>>;
  readonly clusters: ReadonlyMap<string, C>;
}

/** Builds (or reuses) the runtime object for a cluster; called once per cluster per compile. */
export type ClusterFactory<C> = (config: ClusterConfig) => C;

export function compileSnapshot<C>(config: Config, version: number, makeCluster: ClusterFactory<C>): Snapshot<C> {
  const clusters = new Map<string, C>();
  for (const c of config.clusters) clusters.set(c.name, makeCluster(c));
  const resolve = (name: string): C => {
    const c = clusters.get(name);
    // The schema already checks references; this guards callers that skip validation.
    if (c === undefined) throw new Error(`unknown cluster '${name}'`);
    return c;
  };
  const listeners = new Map<string, CompiledListener<C>>();
  for (const l of config.listeners) {
    listeners.set(
      l.name,
      Object.freeze({
        config: l,
        routes: compileRoutes(l.routes, resolve),
        tcpCluster: l.cluster !== undefined ? resolve(l.cluster) : undefined,
      }),
    );
  }
  return Object.freeze({ version, config, createdAt: new Date(), listeners, clusters });
}

/** Stable structural key of a cluster's config: equal keys mean the runtime cluster can be reused. */
export function clusterConfigKey(c: ClusterConfig): string {
  return JSON.stringify(c);
}
