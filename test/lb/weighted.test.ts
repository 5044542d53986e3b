import { describe, expect, it } from 'vitest';
import type { LbEndpoint } from '../../src/lb/types.ts';
import { WeightedBalancer } from '../../src/lb/weighted.ts';
import { makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

const SEEDS = [1, 2, 3, 4, 5, 6];

function pickSequence(balancer: WeightedBalancer, pickCount: number): LbEndpoint[] {
  return Array.from({ length: pickCount }, () => balancer.pick()!);
}

function longestRun(sequence: readonly LbEndpoint[], endpoint: LbEndpoint): number {
  let longest = 0;
  let current = 0;
  for (const picked of sequence) {
    current = picked === endpoint ? current + 1 : 0;
    longest = Math.max(longest, current);
  }
  return longest;
}

describe('WeightedBalancer', () => {
  it.each(SEEDS)('gives 5:3:2 weights exactly 5:3:2 of every 10 picks (seed %i)', (seed) => {
    const endpoints = makeEndpoints(3, [5, 3, 2]);
    const balancer = new WeightedBalancer({ random: seededRandom(seed) });
    balancer.update(endpoints);
    for (let cycle = 0; cycle < 20; cycle++) {
      expect(countPicks(balancer, endpoints, 10).counts).toEqual([5, 3, 2]);
    }
  });

  it('keeps exact proportions for very uneven weights', () => {
    const endpoints = makeEndpoints(3, [10_000, 1, 250]);
    const balancer = new WeightedBalancer({ random: seededRandom(7) });
    balancer.update(endpoints);
    expect(countPicks(balancer, endpoints, 10_251 * 3).counts).toEqual([30_000, 3, 750]);
  });

  it.each(SEEDS)('interleaves 5,1,1 instead of sending 5 in a row to the heavy endpoint (seed %i)', (seed) => {
    const endpoints = makeEndpoints(3, [5, 1, 1]);
    const balancer = new WeightedBalancer({ random: seededRandom(seed) });
    balancer.update(endpoints);
    const sequence = pickSequence(balancer, 7 * 20);
    // One cycle is "H H L H L H H": at most 2 in a row inside it, 4 where one cycle's tail meets the next one's
    // head. 3 is the best any order can do (5 heavy picks split by only 2 light ones); plain weighted
    // round-robin gives 5.
    expect(longestRun(sequence, endpoints[0])).toBeLessThanOrEqual(4);
    for (let cycleStart = 0; cycleStart < sequence.length; cycleStart += 7) {
      expect(longestRun(sequence.slice(cycleStart, cycleStart + 7), endpoints[0])).toBeLessThanOrEqual(2);
    }
    // The two light endpoints are never picked back to back.
    for (let i = 1; i < sequence.length; i++) {
      expect(sequence[i] === endpoints[0] || sequence[i - 1] === endpoints[0]).toBe(true);
    }
  });

  it.each([[[5, 1, 1]], [[5, 3, 2]], [[1, 2, 3, 4]], [[7, 7, 1]]])(
    'keeps every endpoint within one pick of its fair share at every point (weights %j)',
    (weights) => {
      const endpoints = makeEndpoints(weights.length, weights);
      const totalWeight = weights.reduce((sum, weight) => sum + weight, 0);
      for (const seed of SEEDS) {
        const balancer = new WeightedBalancer({ random: seededRandom(seed) });
        balancer.update(endpoints);
        const counts = endpoints.map(() => 0);
        for (let pickNumber = 1; pickNumber <= totalWeight * 5; pickNumber++) {
          counts[endpoints.indexOf(balancer.pick()!)]++;
          for (let i = 0; i < weights.length; i++) {
            const fairShare = (pickNumber * weights[i]) / totalWeight;
            expect(Math.abs(counts[i] - fairShare)).toBeLessThan(1);
          }
        }
      }
    },
  );

  it('behaves as round-robin when weights are equal, starting at a random endpoint', () => {
    const endpoints = makeEndpoints(4, [3, 3, 3, 3]);
    const firstPicks = new Set<LbEndpoint | undefined>();
    for (const seed of [...SEEDS, 7, 8, 9, 10, 11, 12]) {
      const balancer = new WeightedBalancer({ random: seededRandom(seed) });
      balancer.update(endpoints);
      const sequence = pickSequence(balancer, 40);
      firstPicks.add(sequence[0]);
      for (let cycleStart = 0; cycleStart < 40; cycleStart += 4) {
        expect(new Set(sequence.slice(cycleStart, cycleStart + 4)).size).toBe(4);
      }
    }
    expect(firstPicks.size).toBeGreaterThan(1);
  });

  it('applies new weights from the next pick after an update', () => {
    const endpoints = makeEndpoints(2, [1, 1]);
    const balancer = new WeightedBalancer({ random: seededRandom(8) });
    balancer.update(endpoints);
    countPicks(balancer, endpoints, 3);
    const reweighted = makeEndpoints(2, [1, 4]);
    balancer.update(reweighted);
    expect(countPicks(balancer, reweighted, 50).counts).toEqual([10, 40]);
  });
});
