// Records what a discovery source reports, for tests: every endpoint list and error in arrival order.
// Endpoints are flattened to "host:port/weight" strings so assertions read like the config that produced them.
import { formatHostPort } from '../../src/discovery/address.ts';
import type { DiscoveredEndpoint, DiscoveryEvents } from '../../src/discovery/types.ts';

export interface DiscoveryRecorder extends DiscoveryEvents {
  readonly lists: (readonly DiscoveredEndpoint[])[];
  readonly errors: Error[];
  /** The latest list as sorted "host:port/weight" strings; undefined before the first. */
  latest(): string[] | undefined;
}

export function describeEndpoints(endpoints: readonly DiscoveredEndpoint[]): string[] {
  return endpoints.map((e) => `${formatHostPort(e.host, e.port)}/${e.weight}`).sort();
}

export function recordDiscovery(): DiscoveryRecorder {
  const lists: (readonly DiscoveredEndpoint[])[] = [];
  const errors: Error[] = [];
  return {
    lists,
    errors,
    onEndpoints(endpoints) {
      lists.push(endpoints);
    },
    onError(err) {
      errors.push(err);
    },
    latest() {
      const last = lists.at(-1);
      return last && describeEndpoints(last);
    },
  };
}
