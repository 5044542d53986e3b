import { describe, expect, it } from 'vitest';
import { RoundRobinBalancer } from '../../src/lb/round-robin.ts';
import { makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

describe('RoundRobinBalancer', () => {
  it.each([1, 2, 3, 7, 10])(
    'gives each of %i endpoints exactly the same number of picks over whole cycles',
    (count) => {
      const endpoints = makeEndpoints(count);
      const balancer = new RoundRobinBalancer({ random: seededRandom(count) });
      balancer.update(endpoints);
      for (let cycles = 1; cycles <= 5; cycles++) {
        expect(countPicks(balancer, endpoints, count * 100).counts).toEqual(endpoints.map(() => 100));
      }
    },
  );

  it('never picks the same endpoint twice in a row while there are others', () => {
    const endpoints = makeEndpoints(4);
    const balancer = new RoundRobinBalancer({ random: seededRandom(3) });
    balancer.update(endpoints);
    let previous = balancer.pick();
    for (let i = 0; i < 100; i++) {
      const current = balancer.pick();
      expect(current).not.toBe(previous);
      previous = current;
    }
  });

  it('ignores weights', () => {
    const endpoints = makeEndpoints(3, [10, 1, 1]);
    const balancer = new RoundRobinBalancer({ random: seededRandom(5) });
    balancer.update(endpoints);
    expect(countPicks(balancer, endpoints, 300).counts).toEqual([100, 100, 100]);
  });

  it('starts at a random endpoint, so proxies updated together do not all hit the same one first', () => {
    const endpoints = makeEndpoints(5);
    const firstPicks = new Set<unknown>();
    for (let proxy = 0; proxy < 50; proxy++) {
      const balancer = new RoundRobinBalancer({ random: seededRandom(proxy) });
      balancer.update(endpoints);
      firstPicks.add(balancer.pick());
    }
    expect(firstPicks.size).toBe(5);
  });

  it('keeps cycling evenly over a smaller set after an update', () => {
    const endpoints = makeEndpoints(6);
    const balancer = new RoundRobinBalancer({ random: seededRandom(9) });
    balancer.update(endpoints);
    countPicks(balancer, endpoints, 5);
    const remaining = endpoints.slice(0, 2);
    balancer.update(remaining);
    expect(countPicks(balancer, remaining, 100)).toEqual({ counts: [50, 50], outside: 0 });
  });
});
