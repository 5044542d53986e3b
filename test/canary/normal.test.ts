import { describe, expect, it } from 'vitest';
import { normalCdf, normalPdf, normalSurvival } from '../../src/canary/normal.ts';

// Reference values from tables of the standard normal (checked to 17 digits with mpmath at 50 digits).
const KNOWN: [z: number, phi: number][] = [
  [0, 0.5],
  [0.5, 0.6914624612740131],
  [1, 0.84134474606854295],
  [1.96, 0.97500210485177956],
  [-2.326, 0.010009275340867665],
  [-3, 0.0013498980316300945],
  [-5, 2.8665157187919391e-7],
  [-10, 7.6198530241605261e-24],
];

describe('normalCdf', () => {
  it.each(KNOWN)('Φ(%s) matches the table value to 1e-13 relative', (z, phi) => {
    expect(Math.abs(normalCdf(z) - phi) / phi).toBeLessThan(1e-13);
  });

  it('gives the textbook critical values: Φ(1.96) ≈ 0.975, Φ(−2.3263) ≈ 0.01, Φ(2.5758) ≈ 0.995', () => {
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 14);
    expect(normalCdf(-2.3263478740408408)).toBeCloseTo(0.01, 14);
    expect(normalCdf(2.5758293035489)).toBeCloseTo(0.995, 14);
  });

  it('is symmetric, Φ(z) + Φ(−z) = 1, on both sides of the series/continued-fraction switch at 3', () => {
    for (let z = 0; z <= 8; z += 0.05) expect(normalCdf(z) + normalCdf(-z)).toBeCloseTo(1, 15);
    // No jump where the method changes.
    expect(Math.abs(normalCdf(-3 + 1e-12) - normalCdf(-3 - 1e-12))).toBeLessThan(1e-14);
  });

  it('is increasing and its numerical derivative is the density', () => {
    const h = 1e-5;
    for (let z = -6; z <= 6; z += 0.25) {
      expect(normalCdf(z + h)).toBeGreaterThan(normalCdf(z));
      const slope = (normalCdf(z + h) - normalCdf(z - h)) / (2 * h);
      expect(slope).toBeCloseTo(normalPdf(z), 8);
    }
  });

  it('keeps far-tail probabilities instead of rounding them to 0 or 1', () => {
    expect(normalSurvival(10)).toBeCloseTo(7.6198530241605261e-24, 35);
    expect(normalSurvival(10)).toBeGreaterThan(0);
    expect(normalCdf(Infinity)).toBe(1);
    expect(normalCdf(-Infinity)).toBe(0);
    expect(normalCdf(Number.NaN)).toBeNaN();
  });
});
