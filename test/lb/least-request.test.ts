import { describe, expect, it } from 'vitest';
import { LeastRequestBalancer } from '../../src/lb/least-request.ts';
import { chiSquareTest } from './support/chi-square.ts';
import { makeEndpoint, makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

const SIGNIFICANCE = 0.01;

describe('LeastRequestBalancer', () => {
  it('of two endpoints, always picks the one with fewer requests in flight', () => {
    const idle = makeEndpoint(0, 1, 0);
    const busy = makeEndpoint(1, 1, 3);
    const balancer = new LeastRequestBalancer({ random: seededRandom(1) });
    balancer.update([busy, idle]);
    expect(countPicks(balancer, [idle, busy], 1_000).counts).toEqual([1_000, 0]);
  });

  it('follows `active` as the pool changes it, without an update()', () => {
    const endpoints = makeEndpoints(2);
    const balancer = new LeastRequestBalancer({ random: seededRandom(2) });
    balancer.update(endpoints);
    endpoints[0].active = 5;
    expect(balancer.pick()).toBe(endpoints[1]);
    endpoints[1].active = 9;
    expect(balancer.pick()).toBe(endpoints[0]);
  });

  it('sends most requests to the idle endpoint among busy ones, and never to the busiest', () => {
    // Of the 20 ordered pairs, the idle endpoint is in 8 and wins them all (40%); each of the three with 5 in
    // flight wins its 2 pairs with the busiest and, as first drawn, its 2 ties (20% each); the busiest never wins.
    const endpoints = [0, 5, 5, 5, 9].map((active, index) => makeEndpoint(index, 1, active));
    const balancer = new LeastRequestBalancer({ random: seededRandom(3) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 50_000);
    expect(counts[4]).toBe(0);
    expect(chiSquareTest(counts.slice(0, 4), [2, 1, 1, 1]).pValue).toBeGreaterThan(SIGNIFICANCE);
    expect(Math.max(...counts)).toBe(counts[0]);
  });

  it('spreads picks uniformly when every endpoint has the same load (chi-square)', () => {
    const endpoints = [2, 2, 2, 2, 2].map((active, index) => makeEndpoint(index, 1, active));
    const balancer = new LeastRequestBalancer({ random: seededRandom(4) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 50_000);
    expect(chiSquareTest(counts, [1, 1, 1, 1, 1]).pValue).toBeGreaterThan(SIGNIFICANCE);
  });

  it('ignores weights, since in-flight counts already reflect capacity', () => {
    const endpoints = makeEndpoints(3, [10, 1, 1]);
    const balancer = new LeastRequestBalancer({ random: seededRandom(5) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 30_000);
    expect(chiSquareTest(counts, [1, 1, 1]).pValue).toBeGreaterThan(SIGNIFICANCE);
  });

  it('compares two different endpoints, so the least loaded wins even when draws repeat', () => {
    // A random source stuck at one value would draw the same endpoint twice if the draws were not kept distinct.
    const endpoints = [4, 0].map((active, index) => makeEndpoint(index, 1, active));
    const balancer = new LeastRequestBalancer({ random: () => 0 });
    balancer.update(endpoints);
    expect(balancer.pick()).toBe(endpoints[1]);
  });
});
