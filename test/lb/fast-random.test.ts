import { describe, expect, it } from 'vitest';
import { fastRandom, randomIndex } from '../../src/lb/fast-random.ts';
import { chiSquareTest } from './support/chi-square.ts';

describe('fastRandom', () => {
  it('returns numbers in [0, 1) spread evenly over 20 buckets (chi-square)', () => {
    const buckets = Array<number>(20).fill(0);
    let outOfRange = 0;
    for (let i = 0; i < 200_000; i++) {
      const value = fastRandom();
      if (value >= 0 && value < 1) buckets[Math.floor(value * 20)]++;
      else outOfRange++;
    }
    expect(outOfRange).toBe(0);
    // Unseeded, so a true uniform source fails this one run in 100,000.
    expect(chiSquareTest(buckets, Array(20).fill(1)).pValue).toBeGreaterThan(0.00001);
  });

  it('does not repeat itself over a long run', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) seen.add(fastRandom());
    // 100,000 draws from 2^32 values collide about once; many more would mean a short cycle.
    expect(seen.size).toBeGreaterThan(99_990);
  });

  it('gives successive draws that are uncorrelated', () => {
    let previous = fastRandom();
    let sumOfProducts = 0;
    const draws = 100_000;
    for (let i = 0; i < draws; i++) {
      const current = fastRandom();
      sumOfProducts += (previous - 0.5) * (current - 0.5);
      previous = current;
    }
    // Correlation of independent uniforms: mean 0, standard deviation 1/sqrt(draws) ≈ 0.003.
    expect(Math.abs((sumOfProducts / draws) * 12)).toBeLessThan(0.02);
  });
});

describe('randomIndex', () => {
  it('uses an injected random source, scaled to the count', () => {
    expect(randomIndex(10, () => 0)).toBe(0);
    expect(randomIndex(10, () => 0.55)).toBe(5);
    expect(randomIndex(10, () => 0.999999)).toBe(9);
  });

  it.each([1, 2, 3, 7, 65_537, 2_000_003])('stays in [0, %i) and reaches both ends of small ranges', (count) => {
    let lowest = count;
    let highest = -1;
    for (let i = 0; i < 20_000; i++) {
      const index = randomIndex(count, undefined);
      if (!Number.isInteger(index)) throw new Error(`not an integer: ${index}`);
      lowest = Math.min(lowest, index);
      highest = Math.max(highest, index);
    }
    expect(lowest).toBeGreaterThanOrEqual(0);
    expect(highest).toBeLessThan(count);
    if (count <= 7) expect([lowest, highest]).toEqual([0, count - 1]);
  });

  it('spreads indexes evenly without an injected source (chi-square)', () => {
    const counts = Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[randomIndex(7, undefined)]++;
    expect(chiSquareTest(counts, Array(7).fill(1)).pValue).toBeGreaterThan(0.00001);
  });
});
