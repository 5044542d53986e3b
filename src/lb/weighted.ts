// Weighted round-robin, nginx's "smooth" variant: every pick adds each endpoint's weight to its running credit,
// takes the endpoint with the most credit and charges it the total weight. Over every cycle of (total weight) picks
// each endpoint gets exactly its weight, and heavy endpoints are interleaved with light ones instead of bunched.
import { randomIndex } from './fast-random.ts';
import type { LbEndpoint, LbOptions, LoadBalancer } from './types.ts';

export class WeightedBalancer implements LoadBalancer {
  #endpoints: readonly LbEndpoint[] = [];
  #weights = new Float64Array(0);
  /** nginx's `current_weight`: credit earned minus picks charged; always sums to 0 across endpoints. */
  #credits = new Float64Array(0);
  #totalWeight = 0;
  /** Injected by tests; undefined means the shared generator (see fast-random.ts). */
  readonly #random: (() => number) | undefined;

  constructor(options: LbOptions = {}) {
    this.#random = options.random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    const count = endpoints.length;
    // Credits tie whenever weights are equal, and ties go to the lowest index. Rotating the copy by a random
    // amount makes the first pick after a config push differ between proxies, as round-robin's random start does;
    // the sequence is still exact and smooth, it just starts at a different endpoint.
    const rotation = randomIndex(count, this.#random);
    const rotated: LbEndpoint[] = new Array(count);
    this.#weights = new Float64Array(count);
    this.#credits = new Float64Array(count);
    this.#totalWeight = 0;
    for (let i = 0; i < count; i++) {
      const endpoint = endpoints[(i + rotation) % count];
      rotated[i] = endpoint;
      this.#weights[i] = endpoint.weight;
      this.#totalWeight += endpoint.weight;
    }
    this.#endpoints = rotated;
  }

  /** O(endpoints) per pick: fine for the tens of endpoints a cluster usually has. */
  pick(): LbEndpoint | undefined {
    const count = this.#endpoints.length;
    if (count === 0) return undefined;
    const weights = this.#weights;
    const credits = this.#credits;
    let bestIndex = 0;
    let bestCredit = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < count; i++) {
      const credit = credits[i] + weights[i];
      credits[i] = credit;
      if (credit > bestCredit) {
        bestCredit = credit;
        bestIndex = i;
      }
    }
    credits[bestIndex] -= this.#totalWeight;
    return this.#endpoints[bestIndex];
  }
}
