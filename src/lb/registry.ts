// Load-balancing policies by name: config names a policy ('round-robin', …) and the cluster builder asks here
// for a fresh balancer. New policies register a factory instead of adding a case to a switch.
import { ConsistentHashBalancer } from './consistent-hash.ts';
import { LeastRequestBalancer } from './least-request.ts';
import { RandomBalancer } from './random.ts';
import { RoundRobinBalancer } from './round-robin.ts';
import type { LbOptions, LoadBalancer, LoadBalancerFactory } from './types.ts';
import { WeightedBalancer } from './weighted.ts';

const factories = new Map<string, LoadBalancerFactory>();

/** Throws if the name is taken: two modules claiming one name is a bug, not an override. */
export function registerLoadBalancer(name: string, factory: LoadBalancerFactory): void {
  if (factories.has(name)) throw new Error(`load-balancing policy "${name}" is already registered`);
  factories.set(name, factory);
}

/** A new, empty balancer (call update() before pick()); throws for a name nobody registered. */
export function createLoadBalancer(name: string, options: LbOptions = {}): LoadBalancer {
  const factory = factories.get(name);
  if (factory === undefined) {
    throw new Error(`unknown load-balancing policy "${name}"; known policies: ${loadBalancerNames().join(', ')}`);
  }
  return factory(options);
}

/** Registered names in registration order, built-ins first. */
export function loadBalancerNames(): string[] {
  return [...factories.keys()];
}

registerLoadBalancer('round-robin', (options) => new RoundRobinBalancer(options));
registerLoadBalancer('least-request', (options) => new LeastRequestBalancer(options));
registerLoadBalancer('random', (options) => new RandomBalancer(options));
registerLoadBalancer('weighted', (options) => new WeightedBalancer(options));
registerLoadBalancer('consistent-hash', (options) => new ConsistentHashBalancer(options));
