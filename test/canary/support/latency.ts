// Simulated canary windows: latencies drawn from log-normal distributions and errors from Bernoulli trials with
// a fixed-seed PRNG, so the truth (medians, error rates) is known and every run sees the same numbers.
import { histogramOf } from '../../../src/canary/histogram.ts';
import type { VersionWindow } from '../../../src/canary/judge.ts';
import { seededRandom } from '../../lb/support/seeded-random.ts';

/** A Prometheus-style latency layout in ms, as the proxies might report. */
export const BOUNDS_MS = [5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500, 5000];

/** A standard normal draw by Box-Muller from two uniforms. */
export function normalSampler(random: () => number): () => number {
  return () => {
    const u1 = 1 - random(); // (0, 1]: log(0) would be -Infinity
    const u2 = random();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  };
}

/** Log-normal latencies with the given median (ms) and log-scale sigma. */
export function logNormalSamples(random: () => number, count: number, medianMs: number, sigma: number): number[] {
  const normal = normalSampler(random);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(medianMs * Math.exp(sigma * normal()));
  return out;
}

export interface SimulatedVersion {
  requests: number;
  errorRate: number;
  medianMs: number;
  sigma?: number;
}

/** One version's window: `requests` requests, each an error with probability errorRate, each with a latency. */
export function simulateVersion(random: () => number, v: SimulatedVersion): VersionWindow {
  let errors = 0;
  for (let i = 0; i < v.requests; i++) if (random() < v.errorRate) errors++;
  const latencies = logNormalSamples(random, v.requests, v.medianMs, v.sigma ?? 0.35);
  return { requests: v.requests, errors, latency: histogramOf(latencies, BOUNDS_MS) };
}

export function simulateWindow(seed: number, stable: SimulatedVersion, canary: SimulatedVersion) {
  const random = seededRandom(seed);
  return { stable: simulateVersion(random, stable), canary: simulateVersion(random, canary) };
}
