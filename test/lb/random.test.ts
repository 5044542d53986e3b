import { describe, expect, it } from 'vitest';
import { RandomBalancer } from '../../src/lb/random.ts';
import { chiSquareTest } from './support/chi-square.ts';
import { makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

// With a fixed seed these are deterministic; 0.01 is the significance level a truly uniform picker
// would fail one seed in a hundred, so a failure here means a skew, not bad luck.
const SIGNIFICANCE = 0.01;

describe('RandomBalancer', () => {
  it.each([11, 22, 33])('spreads picks uniformly over 3 endpoints (chi-square, seed %i)', (seed) => {
    const endpoints = makeEndpoints(3);
    const balancer = new RandomBalancer({ random: seededRandom(seed) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 30_000);
    expect(chiSquareTest(counts, [1, 1, 1]).pValue).toBeGreaterThan(SIGNIFICANCE);
  });

  it('spreads picks uniformly over 10 endpoints and ignores their weights', () => {
    const endpoints = makeEndpoints(10, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const balancer = new RandomBalancer({ random: seededRandom(44) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 50_000);
    expect(chiSquareTest(counts, Array(10).fill(1)).pValue).toBeGreaterThan(SIGNIFICANCE);
  });

  it('maps the random source straight onto the endpoint list', () => {
    const endpoints = makeEndpoints(4);
    const values = [0, 0.2499, 0.25, 0.999999];
    let next = 0;
    const balancer = new RandomBalancer({ random: () => values[next++] });
    balancer.update(endpoints);
    expect([balancer.pick(), balancer.pick(), balancer.pick(), balancer.pick()]).toEqual([
      endpoints[0],
      endpoints[0],
      endpoints[1],
      endpoints[3],
    ]);
  });
});
