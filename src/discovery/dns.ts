// The DNS discovery source: resolves A, AAAA or SRV records and re-resolves when the answer's TTL runs out, bounded
// by minRefreshMs and maxRefreshMs. A failed lookup reports onError, keeps the last good list and retries after
// minRefreshMs; an answer equal to the last one (in any order) is not re-emitted.
// Names resolve the way every other program on the host resolves them (getaddrinfo: /etc/hosts first, then the
// system's DNS servers), unless `servers` is set: then those servers are asked directly and /etc/hosts is not.
import { lookup, Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DiscoveryConfig } from '../config/schema.ts';
import { endpointListKey } from './endpoint-list.ts';
import type { DiscoveredEndpoint, DiscoveryEvents, DiscoverySource } from './types.ts';

export type DnsDiscoveryConfig = Extract<DiscoveryConfig, { type: 'dns' }>;

interface Resolution {
  endpoints: DiscoveredEndpoint[];
  refreshMs: number;
  /** SRV targets that failed to resolve (kept at their previous addresses, if any): reported, not fatal. */
  targetErrors: Error[];
}

/** Refresh delay for a TTL: clamped to [minRefreshMs, maxRefreshMs]; minRefreshMs wins if the two cross. */
export function refreshDelayMs(ttlS: number, minRefreshMs: number, maxRefreshMs: number): number {
  return Math.max(minRefreshMs, Math.min(ttlS * 1000, maxRefreshMs));
}

/**
 * How a name becomes addresses: `system` is getaddrinfo (hosts file, then DNS; no TTL, so re-resolved every
 * minRefreshMs), `servers` asks the configured DNS servers directly (TTL honoured). SRV records always come from
 * DNS (no hosts file holds them); their targets' addresses follow this choice.
 */
export function addressLookupFor(config: Pick<DnsDiscoveryConfig, 'servers'>): 'system' | 'servers' {
  return config.servers !== undefined && config.servers.length > 0 ? 'servers' : 'system';
}

export function createDnsSource(config: DnsDiscoveryConfig): DiscoverySource {
  return new DnsSource(config);
}

class DnsSource implements DiscoverySource {
  readonly #config: DnsDiscoveryConfig;
  readonly #resolver = new Resolver();
  readonly #system: boolean;
  #events: DiscoveryEvents | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #lastListKey: string | undefined;
  /** SRV target name → its last resolved addresses, so one failing target doesn't drop its endpoints. */
  #targetAddresses = new Map<string, string[]>();

  constructor(config: DnsDiscoveryConfig) {
    this.#config = config;
    this.#system = addressLookupFor(config) === 'system';
    if (config.recordType !== 'SRV' && config.port === undefined) {
      throw new Error(`dns discovery of ${config.recordType} records for '${config.name}' needs a port`);
    }
    if (!this.#system && config.servers) {
      try {
        this.#resolver.setServers(config.servers);
      } catch (err) {
        throw new Error(`dns discovery '${config.name}': bad servers: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  start(events: DiscoveryEvents): void {
    if (this.#events) throw new Error(`dns discovery '${this.#config.name}': already started`);
    this.#events = events;
    if (!this.#closed) void this.#refresh();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    // Rejects queries in flight with ECANCELLED; #refresh sees #closed and stays silent.
    this.#resolver.cancel();
  }

  async #refresh(): Promise<void> {
    let resolution: Resolution;
    try {
      resolution = this.#config.recordType === 'SRV' ? await this.#resolveSrv() : await this.#resolveAddresses();
    } catch (err) {
      if (this.#closed) return;
      this.#schedule(this.#config.minRefreshMs);
      this.#events?.onError(lookupError(this.#config.recordType, this.#config.name, err));
      return;
    }
    if (this.#closed) return;
    // Schedule first, so a throwing listener cannot stop the refresh cycle.
    this.#schedule(resolution.refreshMs);
    const key = endpointListKey(resolution.endpoints);
    if (key !== this.#lastListKey) {
      this.#lastListKey = key;
      this.#events?.onEndpoints(resolution.endpoints);
    }
    for (const err of resolution.targetErrors) this.#events?.onError(err);
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#refresh(), delayMs);
    this.#timer.unref();
  }

  async #resolveAddresses(): Promise<Resolution> {
    const { name, recordType, port, minRefreshMs, maxRefreshMs } = this.#config;
    if (this.#system) {
      const found = await lookup(name, { all: true, family: recordType === 'AAAA' ? 6 : 4 });
      if (found.length === 0) throw new Error('no records');
      const hosts = [...new Set(found.map((r) => r.address))];
      const endpoints = hosts.map((host) => ({ host, port: port!, weight: 1, labels: {} }));
      return { endpoints: sortEndpoints(endpoints), refreshMs: minRefreshMs, targetErrors: [] };
    }
    const records =
      recordType === 'AAAA'
        ? await this.#resolver.resolve6(name, { ttl: true })
        : await this.#resolver.resolve4(name, { ttl: true });
    // c-ares reports an empty answer as ENODATA; this guards the promise that an empty list is never emitted.
    if (records.length === 0) throw new Error('no records');
    const ttlS = Math.min(...records.map((r) => r.ttl));
    const endpoints = records.map((r) => ({ host: r.address, port: port!, weight: 1, labels: {} }));
    return {
      endpoints: sortEndpoints(endpoints),
      refreshMs: refreshDelayMs(ttlS, minRefreshMs, maxRefreshMs),
      targetErrors: [],
    };
  }

  // RFC 2782: only the lowest priority value is in use; higher values are backups, not load-balanced with it.
  // Node's resolveSrv gives no TTL, so SRV answers refresh every minRefreshMs.
  async #resolveSrv(): Promise<Resolution> {
    const { name, minRefreshMs } = this.#config;
    // A target of "." means "no service here" (RFC 2782).
    const records = (await this.#resolver.resolveSrv(name)).filter((r) => r.name !== '' && r.name !== '.');
    if (records.length === 0) throw new Error('no SRV targets');
    const lowest = Math.min(...records.map((r) => r.priority));
    const inUse = records.filter((r) => r.priority === lowest);

    const targets = [...new Set(inUse.map((r) => r.name))];
    const settled = await Promise.allSettled(targets.map((t) => this.#resolveTarget(t)));
    const addresses = new Map<string, string[]>();
    const targetErrors: Error[] = [];
    settled.forEach((outcome, i) => {
      const target = targets[i];
      if (outcome.status === 'fulfilled') {
        addresses.set(target, outcome.value);
        this.#targetAddresses.set(target, outcome.value);
        return;
      }
      const previous = this.#targetAddresses.get(target);
      if (previous) addresses.set(target, previous);
      targetErrors.push(lookupError('A', target, outcome.reason, `SRV target of '${name}'`));
    });
    if (addresses.size === 0) throw targetErrors[0];
    for (const target of this.#targetAddresses.keys()) {
      if (!targets.includes(target)) this.#targetAddresses.delete(target);
    }

    const endpoints: DiscoveredEndpoint[] = [];
    const seen = new Set<string>();
    for (const r of inUse) {
      for (const host of addresses.get(r.name) ?? []) {
        // Two SRV records can lead to the same address; the pool keys endpoints by host:port, so keep the first.
        const id = `${host}|${r.port}`;
        if (seen.has(id)) continue;
        seen.add(id);
        endpoints.push({ host, port: r.port, weight: Math.max(1, r.weight), labels: {} });
      }
    }
    return { endpoints: sortEndpoints(endpoints), refreshMs: minRefreshMs, targetErrors };
  }

  async #resolveTarget(target: string): Promise<string[]> {
    if (isIP(target) !== 0) return [target];
    if (this.#system) {
      const found = await lookup(target, { all: true, family: 4 });
      if (found.length === 0) throw new Error('no records');
      return [...new Set(found.map((r) => r.address))];
    }
    const records = await this.#resolver.resolve4(target);
    if (records.length === 0) throw new Error('no records');
    return records;
  }
}

function lookupError(recordType: string, name: string, err: unknown, context = 'dns discovery'): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = (code && DNS_ERROR_REASONS[code]) ?? code ?? (err as Error).message;
  return new Error(`${context}: ${recordType} lookup of '${name}' failed: ${reason}`, { cause: err });
}

/** c-ares error codes, as node:dns reports them, in the words an operator reading the log would use. */
const DNS_ERROR_REASONS: Readonly<Record<string, string>> = {
  ENOTFOUND: 'no such name (NXDOMAIN)',
  EAI_AGAIN: 'temporary failure (EAI_AGAIN)',
  ENODATA: 'no records of that type',
  ESERVFAIL: 'server failure (SERVFAIL)',
  EREFUSED: 'query refused (REFUSED)',
  ETIMEOUT: 'timed out',
  ECONNREFUSED: 'connection refused',
  EBADRESP: 'malformed response',
  EFORMERR: 'server rejected the query as malformed (FORMERR)',
};

/** Stable order, so logs and tests see the same list for the same answer. */
function sortEndpoints(endpoints: DiscoveredEndpoint[]): DiscoveredEndpoint[] {
  return endpoints.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port));
}
