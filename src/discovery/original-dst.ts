// The original-dst "source": it discovers nothing. Such a cluster's endpoints are the addresses its requests'
// clients dialed (proxy/original-dst.ts), made by the cluster at the pick (proxy/cluster.ts), so the source only
// says, once, that there is no fixed list: the cluster is warm at once.
import type { DiscoveryConfig } from '../config/schema.ts';
import type { DiscoveryEvents, DiscoverySource } from './types.ts';

export type OriginalDstDiscoveryConfig = Extract<DiscoveryConfig, { type: 'original-dst' }>;

export function createOriginalDstSource(_config: OriginalDstDiscoveryConfig): DiscoverySource {
  let closed = false;
  return {
    start(events: DiscoveryEvents): void {
      if (!closed) events.onEndpoints([]);
    },
    close(): void {
      closed = true;
    },
  };
}
