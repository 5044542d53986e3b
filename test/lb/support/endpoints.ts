// Test endpoints: distinct addresses (10.0.0.1:8080, 10.0.0.2:8080, …) with the weights and in-flight counts a
// test needs.
import type { LbEndpoint } from '../../../src/lb/types.ts';

export function makeEndpoint(index: number, weight = 1, active = 0): LbEndpoint {
  const n = index + 1;
  const host = `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`;
  return { id: `${host}:8080`, host, port: 8080, weight, active };
}

/** `count` endpoints; endpoint i gets weights[i], or 1 when not given. */
export function makeEndpoints(count: number, weights: readonly number[] = []): LbEndpoint[] {
  return Array.from({ length: count }, (_, index) => makeEndpoint(index, weights[index] ?? 1));
}
