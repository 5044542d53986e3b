import { describe, expect, it } from 'vitest';
import { chiSquareTest, upperRegularizedGamma } from './chi-square.ts';

// The statistical LB tests lean on this helper, so check it against published critical values first.
describe('chi-square helper', () => {
  it.each([
    [1, 3.841, 0.05],
    [2, 5.991, 0.05],
    [4, 9.488, 0.05],
    [2, 9.21, 0.01],
    [9, 21.666, 0.01],
    [4, 18.467, 0.001],
    [99, 123.225, 0.05],
  ])('matches the table: df %i at %s has p = %s', (degreesOfFreedom, statistic, pValue) => {
    expect(upperRegularizedGamma(degreesOfFreedom / 2, statistic / 2)).toBeCloseTo(pValue, 3);
  });

  it('accepts counts that match the expected shares', () => {
    expect(chiSquareTest([1000, 1010, 990], [1, 1, 1]).pValue).toBeGreaterThan(0.5);
    expect(chiSquareTest([500, 300, 200], [5, 3, 2]).pValue).toBeCloseTo(1, 6);
  });

  it('rejects counts that are visibly skewed', () => {
    expect(chiSquareTest([1100, 1000, 900], [1, 1, 1]).pValue).toBeLessThan(0.001);
  });
});
