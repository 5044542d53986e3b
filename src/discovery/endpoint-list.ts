// Endpoint lists as sources produce them: built from the config's StaticEndpoint shape, and compared so that a
// source emits only when the set really changed (DNS servers rotate answers; editors rewrite identical files).
import type { StaticEndpointConfig } from '../config/schema.ts';
import { parseHostPort } from './address.ts';
import type { DiscoveredEndpoint } from './types.ts';

/** A validated StaticEndpoint (defaults applied) as a DiscoveredEndpoint. */
export function endpointFromConfig(config: StaticEndpointConfig): DiscoveredEndpoint {
  const { host, port } = parseHostPort(config.address);
  return { host, port, weight: config.weight, labels: config.labels };
}

/** A string equal for two lists exactly when they hold the same endpoints, whatever their order. */
export function endpointListKey(endpoints: readonly DiscoveredEndpoint[]): string {
  return endpoints
    .map((e) => JSON.stringify([e.host, e.port, e.weight, Object.entries(e.labels).sort(byKey)]))
    .sort()
    .join('\n');
}

function byKey(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
