import { describe, expect, it } from 'vitest';
import {
  ConsistentHashBalancer,
  DEFAULT_MAGLEV_TABLE_SIZE,
  hashString32,
  MAX_MAGLEV_TABLE_SIZE,
  maglevTableSize,
} from '../../src/lb/consistent-hash.ts';
import type { LbEndpoint, LbOptions } from '../../src/lb/types.ts';
import { chiSquareTest } from './support/chi-square.ts';
import { makeEndpoint, makeEndpoints } from './support/endpoints.ts';
import { countPicks } from './support/pick-counts.ts';
import { seededRandom } from './support/seeded-random.ts';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const byKey = (pickIndex: number) => ({ hashKey: KEYS[pickIndex % KEYS.length] });

/** Which endpoint id each of KEYS lands on. */
function assignKeys(endpoints: readonly LbEndpoint[], options: LbOptions = {}): string[] {
  const balancer = new ConsistentHashBalancer(options);
  balancer.update(endpoints);
  return KEYS.map((hashKey) => balancer.pick({ hashKey })!.id);
}

function shareMoved(before: readonly string[], after: readonly string[], where = (_index: number) => true): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i] && where(i)) moved++;
  return moved / before.length;
}

describe('ConsistentHashBalancer', () => {
  it('sends the same key to the same endpoint every time', () => {
    const endpoints = makeEndpoints(5);
    const balancer = new ConsistentHashBalancer();
    balancer.update(endpoints);
    const first = balancer.pick({ hashKey: 'session-abc' });
    for (let i = 0; i < 100; i++) expect(balancer.pick({ hashKey: 'session-abc' })).toBe(first);
  });

  it('maps keys the same way whatever order the endpoints are listed in, on every proxy', () => {
    const endpoints = makeEndpoints(5);
    const shuffled = [endpoints[3], endpoints[0], endpoints[4], endpoints[2], endpoints[1]];
    expect(assignKeys(shuffled)).toEqual(assignKeys(endpoints));
  });

  it('spreads 10,000 distinct keys evenly over 5 endpoints (each within 20% of the mean)', () => {
    const endpoints = makeEndpoints(5);
    const balancer = new ConsistentHashBalancer();
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, KEYS.length, byKey);
    for (const count of counts) expect(Math.abs(count - 2_000)).toBeLessThan(400);
  });

  it('moves about 1/N of keys when an endpoint is added, all of them to the new endpoint but a few', () => {
    const endpoints = makeEndpoints(6);
    const before = assignKeys(endpoints.slice(0, 5));
    const after = assignKeys(endpoints);
    const moved = shareMoved(before, after);
    expect(moved).toBeGreaterThan(0.1);
    expect(moved).toBeLessThan(0.25);
    // Maglev trades perfect stability for even shares: a handful of keys shuffle between the old endpoints.
    expect(shareMoved(before, after, (i) => after[i] !== endpoints[5].id)).toBeLessThan(0.01);
  });

  it('moves the keys of a removed endpoint and leaves almost all others where they were', () => {
    const endpoints = makeEndpoints(5);
    const removed = endpoints[2];
    const before = assignKeys(endpoints);
    const after = assignKeys(endpoints.filter((endpoint) => endpoint !== removed));
    expect(after).not.toContain(removed.id);
    // Every key that was on the removed endpoint had to move: about a fifth of them.
    expect(shareMoved(before, after, (i) => before[i] === removed.id)).toBeGreaterThan(0.15);
    // Keys on the surviving endpoints stay put, bar under 1% reshuffled when Maglev refills the table.
    expect(shareMoved(before, after, (i) => before[i] !== removed.id)).toBeLessThan(0.01);
  });

  it('gives endpoints key shares in proportion to their weights', () => {
    const endpoints = makeEndpoints(3, [3, 1, 1]);
    const balancer = new ConsistentHashBalancer();
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, KEYS.length, byKey);
    expect(counts[0] / KEYS.length).toBeGreaterThan(0.55);
    expect(counts[0] / KEYS.length).toBeLessThan(0.65);
    expect(Math.abs(counts[1] - counts[2])).toBeLessThan(400);
  });

  it('picks a random endpoint, by weight, for a request without a key (chi-square)', () => {
    const endpoints = makeEndpoints(3, [2, 1, 1]);
    const balancer = new ConsistentHashBalancer({ random: seededRandom(12) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 40_000);
    expect(chiSquareTest(counts, [2, 1, 1]).pValue).toBeGreaterThan(0.01);
  });

  it('treats the empty string as a key, not as no key', () => {
    const endpoints = makeEndpoints(5);
    const balancer = new ConsistentHashBalancer({ random: seededRandom(13) });
    balancer.update(endpoints);
    const first = balancer.pick({ hashKey: '' });
    expect(countPicks(balancer, endpoints, 50, () => ({ hashKey: '' })).counts).toEqual(
      endpoints.map((endpoint) => (endpoint === first ? 50 : 0)),
    );
  });

  it('works with a small custom table, which makes shares coarser', () => {
    const endpoints = makeEndpoints(3);
    const balancer = new ConsistentHashBalancer({ tableSize: 13 });
    balancer.update(endpoints);
    const { counts, outside } = countPicks(balancer, endpoints, KEYS.length, byKey);
    expect(outside).toBe(0);
    expect(counts.every((count) => count > 0)).toBe(true);
  });

  it('gives even a very light endpoint some keys next to a very heavy one', () => {
    const weights = Array.from({ length: 300 }, (_, i) => (i === 0 ? 10_000 : 1 + (i % 7)));
    const endpoints = makeEndpoints(300, weights);
    const balancer = new ConsistentHashBalancer({ random: seededRandom(14) });
    balancer.update(endpoints);
    const { counts } = countPicks(balancer, endpoints, 200_000);
    expect(counts.filter((count) => count === 0)).toEqual([]);
    expect(counts[0] / 200_000).toBeGreaterThan(0.8);
  });

  it('serves more than 65,535 endpoints (wider table entries)', () => {
    const endpoints = makeEndpoints(70_000);
    const balancer = new ConsistentHashBalancer({ random: seededRandom(15), tableSize: 1_000_003 });
    balancer.update(endpoints);
    const { counts, outside } = countPicks(balancer, endpoints, 400_000);
    expect(outside).toBe(0);
    expect(counts.filter((count) => count > 0).length).toBeGreaterThan(65_536);
  });

  it('returns the objects from the latest update when the same ids come back as new objects', () => {
    // The pool may rebuild endpoint objects on a discovery push; `active` must be counted on the current ones.
    const balancer = new ConsistentHashBalancer();
    balancer.update([makeEndpoint(0), makeEndpoint(1)]);
    const fresh = [makeEndpoint(0), makeEndpoint(1)];
    balancer.update(fresh);
    expect(countPicks(balancer, fresh, 1_000, byKey).outside).toBe(0);
  });
});

describe('maglevTableSize', () => {
  it('keeps primes and rounds other sizes up to the next prime', () => {
    expect(maglevTableSize(DEFAULT_MAGLEV_TABLE_SIZE)).toBe(65_537);
    expect(maglevTableSize(65_536)).toBe(65_537);
    expect(maglevTableSize(100)).toBe(101);
    expect(maglevTableSize(1_000_000)).toBe(1_000_003);
    expect(maglevTableSize(1)).toBe(2);
  });

  it('rejects sizes that are not integers in range', () => {
    expect(() => maglevTableSize(0)).toThrow(RangeError);
    expect(() => maglevTableSize(MAX_MAGLEV_TABLE_SIZE + 1)).toThrow(RangeError);
    expect(maglevTableSize(MAX_MAGLEV_TABLE_SIZE)).toBe(MAX_MAGLEV_TABLE_SIZE);
    expect(() => maglevTableSize(10.5)).toThrow(
      'consistent-hash tableSize must be an integer from 1 to 2000003, got 10.5',
    );
    expect(() => new ConsistentHashBalancer({ tableSize: -3 })).toThrow(RangeError);
  });
});

describe('hashString32', () => {
  it('is a deterministic unsigned 32-bit value that depends on the seed', () => {
    expect(hashString32('10.0.0.1:8080', 1)).toBe(hashString32('10.0.0.1:8080', 1));
    expect(hashString32('10.0.0.1:8080', 1)).not.toBe(hashString32('10.0.0.1:8080', 2));
    for (const text of ['', 'a', 'user-1', 'ünïcödé 🎉']) {
      const hash = hashString32(text, 7);
      expect(Number.isInteger(hash) && hash >= 0 && hash < 2 ** 32).toBe(true);
    }
  });

  it('changes about half the bits when one character of a short id changes', () => {
    let flippedBits = 0;
    const samples = 1_000;
    for (let i = 0; i < samples; i++) {
      let diff = hashString32(`10.0.0.${i}:8080`, 0) ^ hashString32(`10.0.0.${i + 1}:8080`, 0);
      for (; diff !== 0; diff &= diff - 1) flippedBits++;
    }
    expect(flippedBits / samples).toBeGreaterThan(14);
    expect(flippedBits / samples).toBeLessThan(18);
  });
});
