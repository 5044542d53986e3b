import { describe, expect, it } from 'vitest';
import { LbPolicyName } from '../../src/config/schema.ts';
import { ConsistentHashBalancer } from '../../src/lb/consistent-hash.ts';
import { LeastRequestBalancer } from '../../src/lb/least-request.ts';
import { RandomBalancer } from '../../src/lb/random.ts';
import { createLoadBalancer, loadBalancerNames, registerLoadBalancer } from '../../src/lb/registry.ts';
import { RoundRobinBalancer } from '../../src/lb/round-robin.ts';
import type { LbOptions } from '../../src/lb/types.ts';
import { WeightedBalancer } from '../../src/lb/weighted.ts';
import { makeEndpoints } from './support/endpoints.ts';

describe('load-balancer registry', () => {
  it('has a policy for every name the config schema accepts', () => {
    expect(loadBalancerNames()).toEqual(expect.arrayContaining([...LbPolicyName.options]));
  });

  it.each([
    ['round-robin', RoundRobinBalancer],
    ['least-request', LeastRequestBalancer],
    ['random', RandomBalancer],
    ['weighted', WeightedBalancer],
    ['consistent-hash', ConsistentHashBalancer],
  ])('creates a %s balancer by name', (name, balancerClass) => {
    expect(createLoadBalancer(name)).toBeInstanceOf(balancerClass);
  });

  it('creates an independent balancer on every call', () => {
    const first = createLoadBalancer('round-robin');
    const second = createLoadBalancer('round-robin');
    expect(first).not.toBe(second);
    first.update(makeEndpoints(2));
    expect(second.pick({})).toBeUndefined();
  });

  it('rejects an unknown name with an error that lists the known policies', () => {
    expect(() => createLoadBalancer('least-connections')).toThrow(
      /unknown load-balancing policy "least-connections"; known policies: round-robin, least-request, random, weighted, consistent-hash/,
    );
  });

  it('passes options through to the factory and serves policies registered later', () => {
    // A real balancer, so the conformance suite still passes if vitest ever shares the registry across files.
    const seen: LbOptions[] = [];
    registerLoadBalancer('test-custom', (options) => {
      seen.push(options);
      return new RandomBalancer(options);
    });
    const options = { tableSize: 11 };
    expect(createLoadBalancer('test-custom', options)).toBeInstanceOf(RandomBalancer);
    expect(seen).toEqual([options]);
    expect(loadBalancerNames()).toContain('test-custom');
  });

  it('refuses to register a name twice', () => {
    expect(() => registerLoadBalancer('round-robin', () => new RandomBalancer({}))).toThrow(
      'load-balancing policy "round-robin" is already registered',
    );
  });
});
