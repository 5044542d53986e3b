// Runs a balancer many times and tallies the results per endpoint, the raw material of the distribution tests.
import type { LbEndpoint, LoadBalancer, PickContext } from '../../../src/lb/types.ts';

const NO_KEY: PickContext = {};

export interface PickCounts {
  /** Picks per endpoint, in the order of the `endpoints` argument. */
  counts: number[];
  /** Picks that returned undefined or an object not in `endpoints`. */
  outside: number;
}

export function countPicks(
  balancer: LoadBalancer,
  endpoints: readonly LbEndpoint[],
  pickCount: number,
  contextForPick: (pickIndex: number) => PickContext = () => NO_KEY,
): PickCounts {
  const indexOf = new Map(endpoints.map((endpoint, index) => [endpoint, index]));
  const counts = endpoints.map(() => 0);
  let outside = 0;
  for (let i = 0; i < pickCount; i++) {
    const picked = balancer.pick(contextForPick(i));
    const index = picked === undefined ? undefined : indexOf.get(picked);
    if (index === undefined) outside++;
    else counts[index]++;
  }
  return { counts, outside };
}
