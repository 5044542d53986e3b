// Random: each pick is an independent uniform choice among the endpoints, ignoring weights.
// Stateless between picks, so it needs no coordination and has no sequence for many proxies to fall into step on.
import { randomIndex } from './fast-random.ts';
import type { LbEndpoint, LbOptions, LoadBalancer } from './types.ts';

export class RandomBalancer implements LoadBalancer {
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
    const count = this.#endpoints.length;
    if (count === 0) return undefined;
    return this.#endpoints[randomIndex(count, this.#random)];
  }
}
