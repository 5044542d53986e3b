// Round-robin: each pick takes the next endpoint in turn, ignoring weights (use 'weighted' for those).
// Every update() restarts the turn at a random endpoint, so a config push to many proxies at once does not
// send all of their first requests to the same endpoint.
import { randomIndex } from './fast-random.ts';
import type { LbEndpoint, LbOptions, LoadBalancer } from './types.ts';

export class RoundRobinBalancer implements LoadBalancer {
  #endpoints: readonly LbEndpoint[] = [];
  #nextIndex = 0;
  /** Injected by tests; undefined means the shared generator (see fast-random.ts). */
  readonly #random: (() => number) | undefined;

  constructor(options: LbOptions = {}) {
    this.#random = options.random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#endpoints = endpoints.slice();
    this.#nextIndex = randomIndex(endpoints.length, this.#random);
  }

  pick(): LbEndpoint | undefined {
    const count = this.#endpoints.length;
    if (count === 0) return undefined;
    const index = this.#nextIndex;
    // Wrap by comparison rather than modulo: cheaper, and the counter never grows without bound.
    this.#nextIndex = index + 1 === count ? 0 : index + 1;
    return this.#endpoints[index];
  }
}
