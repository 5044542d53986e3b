// One suite, every registered policy: what any balancer must do whatever its strategy.
import { describe, expect, it } from 'vitest';
import { createLoadBalancer, loadBalancerNames } from '../../src/lb/registry.ts';
import type { LbEndpoint, PickContext } from '../../src/lb/types.ts';
import { makeEndpoint, makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

// Policies that hash see a different key per pick; the others ignore it.
const varyingKey = (pickIndex: number): PickContext => ({ hashKey: `session-${pickIndex}` });
const noKey = (): PickContext => ({});

describe.each(loadBalancerNames())('%s balancer', (policyName) => {
  const create = (seed = 1) => createLoadBalancer(policyName, { random: seededRandom(seed) });

  it('returns undefined before any endpoints are given', () => {
    expect(create().pick({})).toBeUndefined();
    expect(create().pick({ hashKey: 'user-1' })).toBeUndefined();
  });

  it('returns undefined once the endpoint set becomes empty', () => {
    const balancer = create();
    balancer.update(makeEndpoints(3));
    balancer.update([]);
    expect(balancer.pick({})).toBeUndefined();
    expect(balancer.pick({ hashKey: 'user-1' })).toBeUndefined();
  });

  it('always returns the only endpoint, with or without a key', () => {
    const balancer = create();
    const only = makeEndpoint(0, 3, 7);
    balancer.update([only]);
    for (const contextFor of [varyingKey, noKey]) {
      expect(countPicks(balancer, [only], 200, contextFor)).toEqual({ counts: [200], outside: 0 });
    }
  });

  it('returns the endpoint objects it was given, so the pool can count requests on them', () => {
    const balancer = create();
    const endpoints = makeEndpoints(4);
    balancer.update(endpoints);
    for (let i = 0; i < 50; i++) expect(endpoints).toContain(balancer.pick(varyingKey(i)));
  });

  it('never returns a removed endpoint after update() replaces the set', () => {
    const balancer = create();
    const before = makeEndpoints(6);
    balancer.update(before);
    countPicks(balancer, before, 100, varyingKey);
    const after = [before[1], before[4], makeEndpoint(10), makeEndpoint(11)];
    balancer.update(after);
    expect(countPicks(balancer, after, 5_000, varyingKey).outside).toBe(0);
    expect(countPicks(balancer, after, 5_000, noKey).outside).toBe(0);
  });

  it('is unaffected when the caller reuses the array it passed to update()', () => {
    const balancer = create();
    const endpoints = makeEndpoints(4);
    const given: LbEndpoint[] = [...endpoints];
    balancer.update(given);
    given.length = 0;
    given.push(makeEndpoint(99));
    expect(countPicks(balancer, endpoints, 2_000, varyingKey).outside).toBe(0);
  });

  it('eventually picks every endpoint', () => {
    const balancer = create();
    const endpoints = makeEndpoints(7, [1, 2, 3, 1, 5, 1, 1]);
    balancer.update(endpoints);
    for (const contextFor of [varyingKey, noKey]) {
      const { counts } = countPicks(balancer, endpoints, 2_000, contextFor);
      expect(counts.every((count) => count > 0)).toBe(true);
    }
  });

  it('works with its default random source when none is injected', () => {
    const balancer = createLoadBalancer(policyName, {});
    const endpoints = makeEndpoints(3);
    balancer.update(endpoints);
    const { counts, outside } = countPicks(balancer, endpoints, 3_000, varyingKey);
    expect(outside).toBe(0);
    expect(counts.every((count) => count > 0)).toBe(true);
  });
});
