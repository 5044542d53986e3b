// Least-request by "power of two choices": pick two distinct endpoints at random and take the one with fewer
// requests in flight (`active`, kept by the pool). Unlike always taking the least loaded, it needs no O(n) scan
// and does not pour every request into one endpoint that happens to be idle (a newly added one starts at 0).
//
// Weights are ignored on purpose: `active` already measures capacity (a faster or bigger endpoint finishes sooner,
// so it has fewer requests in flight and wins more comparisons), and scaling `active` by weight would make the
// resulting share hard to predict. Use 'weighted' when a fixed split is what you want.
import { randomIndex } from './fast-random.ts';
import type { LbEndpoint, LbOptions, LoadBalancer } from './types.ts';

export class LeastRequestBalancer implements LoadBalancer {
  #endpoints: readonly LbEndpoint[] = [];
  /** Injected by tests; undefined means the shared generator (see fast-random.ts). */
  readonly #random: (() => number) | undefined;

  constructor(options: LbOptions = {}) {
    this.#random = options.random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#endpoints = endpoints.slice();
  }

  pick(): LbEndpoint | undefined {
    const endpoints = this.#endpoints;
    const count = endpoints.length;
    if (count < 2) return endpoints[0];
    const firstIndex = randomIndex(count, this.#random);
    // Draw the second from the other count-1 endpoints and skip over the first, so the two are always distinct
    // and every pair is equally likely.
    let secondIndex = randomIndex(count - 1, this.#random);
    if (secondIndex >= firstIndex) secondIndex++;
    const first = endpoints[firstIndex];
    const second = endpoints[secondIndex];
    // Ties go to the first, which is itself a uniform choice, so equal loads still spread evenly.
    return second.active < first.active ? second : first;
  }
}
