// The static discovery source: the endpoints written in the config, emitted once, synchronously within start().
// Addresses are split at construction so a bad one fails config compile rather than the first request.
import type { DiscoveryConfig } from '../config/schema.ts';
import { endpointFromConfig } from './endpoint-list.ts';
import type { DiscoveredEndpoint, DiscoveryEvents, DiscoverySource } from './types.ts';

export type StaticDiscoveryConfig = Extract<DiscoveryConfig, { type: 'static' }>;

export function createStaticSource(config: StaticDiscoveryConfig): DiscoverySource {
  const endpoints: readonly DiscoveredEndpoint[] = Object.freeze(config.endpoints.map(endpointFromConfig));
  let started = false;
  let closed = false;
  return {
    start(events: DiscoveryEvents): void {
      if (started) throw new Error('static discovery: already started');
      started = true;
      if (!closed) events.onEndpoints(endpoints);
    },
    close(): void {
      closed = true;
    },
  };
}
