// A listener as one request sees it: the compiled listener of the Snapshot that was serving when the request
// started, with its stage chain, direction and service, and the process-wide sinks it reports to. A request
// holds its scope to the end; a reload builds new scopes and the listener swaps one reference.
import type { CompiledListener } from '../src/config/compile.ts';
import type { Logger } from '../src/log.ts';
import type { Cluster } from './cluster.ts';
import type { MeshIdentity } from './mtls/identity.ts';
import type { StageChain } from './pipeline.ts';
import type { ProxyStats } from './stats.ts';
import type { ProxyTelemetry } from './telemetry.ts';

export interface ListenerScope {
  readonly name: string;
  readonly compiled: CompiledListener<Cluster>;
  readonly chain: StageChain;
  readonly direction: 'inbound' | 'outbound';
  readonly outbound: boolean;
  /** The service this proxy fronts (the config's `service`). */
  readonly serviceName: string;
  readonly stats: ProxyStats;
  readonly telemetry: ProxyTelemetry;
  readonly log: Logger;
  /** A captured (`originalDst`) http listener's connections that are not HTTP: the same listener with the tcp
   *  chain (proxy/tcp.ts), routed by original destination; null elsewhere. */
  readonly tcpPassthrough: ListenerScope | null;
  /** The proxy's mesh identity (mtls/identity.ts), or null when the config has no `mtls`. */
  readonly identity: MeshIdentity | null;
}

/** Whatever hands out the current scope to new requests (a listener; a test). */
export interface ScopeSource {
  readonly scope: ListenerScope;
}

export function listenerScope(
  compiled: CompiledListener<Cluster>,
  chain: StageChain,
  serviceName: string,
  deps: { stats: ProxyStats; telemetry: ProxyTelemetry; log: Logger; identity?: MeshIdentity | null },
  tcpChain: StageChain | null = null,
): ListenerScope {
  const direction = compiled.config.direction;
  return Object.freeze({
    name: compiled.config.name,
    compiled,
    chain,
    direction,
    outbound: direction === 'outbound',
    serviceName,
    stats: deps.stats,
    telemetry: deps.telemetry,
    log: deps.log,
    identity: deps.identity ?? null,
    tcpPassthrough: tcpChain === null ? null : listenerScope(compiled, tcpChain, serviceName, deps),
  });
}
