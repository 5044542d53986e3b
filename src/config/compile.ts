// Compiles a validated Config into an immutable Snapshot: routes ordered and their matchers built, weighted
// splits turned into pick tables, clusters created (or reused from the previous Snapshot by the caller's
// factory). A reload builds a new Snapshot and swaps one reference; requests in flight keep the old one.
// Compiling does no I/O (the factory builds clusters without starting them). A Snapshot is what control will push:
// it is rebuilt from its `config` alone (plain JSON), and its `hash` names that config's content.
import { createHash } from 'node:crypto';
import { compileRoutes, type RouteTable } from '../routing/match.ts';
import { compileOriginalDstTable, type OriginalDstTable } from '../routing/original-dst.ts';
import type { ClusterConfig, Config, ListenerConfig } from './schema.ts';

export interface CompiledListener<C> {
  readonly config: ListenerConfig;
  readonly routes: RouteTable<C>;
  /** protocol tcp: the one cluster. */
  readonly tcpCluster: C | undefined;
  /** `originalDst: true`: the routes by original destination, taken when no route matches (HTTP) or always (TCP). */
  readonly originalDst: OriginalDstTable<C> | undefined;
}

export interface Snapshot<C> {
  /** Counts the Snapshots this process has served (1, 2, …); says nothing about content: see `hash`. */
  readonly version: number;
  /** sha256 (hex) of the config's canonical JSON (canonicalJson): equal configs, whatever their key order, have
   *  equal hashes; any changed field changes it. */
  readonly hash: string;
  /** The validated config, plain JSON data: `compileSnapshot(parseConfig(JSON.parse(JSON.stringify(config))))`
   *  rebuilds an equal Snapshot with the same hash. */
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
        originalDst: l.originalDst ? compileOriginalDstTable(config.clusters, l.cluster!, resolve) : undefined,
      }),
    );
  }
  return Object.freeze({ version, hash: configHash(config), config, createdAt: new Date(), listeners, clusters });
}

/**
 * JSON with object keys sorted at every depth and undefined members left out (as JSON.stringify does), so the
 * text depends on the content only. Array order is kept: it means something (routes, endpoints).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** The content hash of a validated config: sha256 over its canonical JSON, hex. */
export function configHash(config: Config): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

/** Stable structural key of a cluster's config: equal keys mean the runtime cluster can be reused. */
export function clusterConfigKey(c: ClusterConfig): string {
  return JSON.stringify(c);
}
