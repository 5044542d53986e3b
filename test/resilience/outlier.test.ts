// Outlier detection's rules without sockets: what counts, the consecutive thresholds, the ejection time growing
// with ejections in a row (and capped), its fall while an endpoint behaves, the max-ejection share and panic.
import { describe, expect, it } from 'vitest';
import {
  classify,
  ejectionTimeMs,
  inPanic,
  mayEject,
  type OutlierPolicy,
  OutlierRecord,
} from '../../src/resilience/outlier.ts';

const policy: OutlierPolicy = {
  consecutive5xx: 5,
  consecutiveGatewayErrors: 5,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
};

describe('classify', () => {
  it('sorts statuses and error sources', () => {
    expect(classify(200, null)).toBe('ok');
    expect(classify(404, null)).toBe('ok');
    expect(classify(500, null)).toBe('5xx');
    for (const s of [502, 503, 504]) expect(classify(s, null)).toBe('gateway');
    for (const src of ['connect', 'upstream-reset', 'timeout']) expect(classify(0, src)).toBe('gateway');
    expect(classify(0, 'protocol')).toBe('5xx');
    expect(classify(0, 'forward')).toBeNull(); // our side, not the endpoint's
  });
});

describe('OutlierRecord', () => {
  it('reaches the threshold on the fifth gateway error in a row, not before', () => {
    const r = new OutlierRecord();
    for (let i = 0; i < 4; i++) expect(r.observe('gateway', policy)).toBe(false);
    expect(r.observe('gateway', policy)).toBe(true);
  });

  it('a success resets both runs; a plain 500 breaks a run of gateway errors but not of 5xx', () => {
    const r = new OutlierRecord();
    const gatewayOnly = { ...policy, consecutive5xx: 0 };
    for (let i = 0; i < 4; i++) r.observe('gateway', gatewayOnly);
    r.observe('5xx', gatewayOnly);
    for (let i = 0; i < 4; i++) expect(r.observe('gateway', gatewayOnly)).toBe(false);
    r.observe('ok', gatewayOnly);
    for (let i = 0; i < 4; i++) expect(r.observe('gateway', gatewayOnly)).toBe(false);
    expect(r.observe('gateway', gatewayOnly)).toBe(true);

    const fivexx = new OutlierRecord();
    for (let i = 0; i < 2; i++) fivexx.observe('gateway', policy);
    for (let i = 0; i < 2; i++) fivexx.observe('5xx', policy);
    expect(fivexx.observe('5xx', policy)).toBe(true); // mixed 5xx and gateway errors count for consecutive5xx
  });

  it('with both counts at 0 never ejects', () => {
    const r = new OutlierRecord();
    const off = { ...policy, consecutive5xx: 0, consecutiveGatewayErrors: 0 };
    for (let i = 0; i < 100; i++) expect(r.observe('gateway', off)).toBe(false);
  });

  it('ejects for base × ejections in a row, capped, and returns at the sweep after its time', () => {
    const r = new OutlierRecord();
    r.eject(policy, 1_000);
    expect(r.ejected).toBe(true);
    expect(r.ejectedUntilMs).toBe(31_000);
    expect(r.observe('gateway', policy)).toBe(false); // late answers of an ejected endpoint don't count
    expect(r.sweep(policy, 30_999)).toBe(false);
    expect(r.sweep(policy, 31_000)).toBe(true);
    expect(r.ejected).toBe(false);
    r.eject(policy, 40_000);
    expect(r.ejectedUntilMs - 40_000).toBe(60_000);
    expect(r.timesEjected).toBe(2);
    for (let i = 3; i <= 12; i++) {
      r.sweep(policy, r.ejectedUntilMs);
      r.eject(policy, r.ejectedUntilMs + 1);
    }
    expect(r.multiplier).toBe(12);
    expect(ejectionTimeMs(policy, r.multiplier)).toBe(300_000);
  });

  it('sheds one ejection from the multiplier per base ejection time spent in play', () => {
    const r = new OutlierRecord();
    r.eject(policy, 0);
    r.sweep(policy, 30_000);
    r.eject(policy, 30_000);
    expect(r.multiplier).toBe(2);
    r.sweep(policy, 90_000); // back
    r.sweep(policy, 100_000);
    expect(r.multiplier).toBe(2);
    r.sweep(policy, 120_000);
    expect(r.multiplier).toBe(1);
    r.sweep(policy, 150_000);
    expect(r.multiplier).toBe(0);
    r.eject(policy, 200_000);
    expect(r.ejectedUntilMs).toBe(230_000);
  });

  it('a max below the base keeps the base time', () => {
    expect(ejectionTimeMs({ ...policy, maxEjectionTimeMs: 1_000 }, 3)).toBe(30_000);
  });
});

describe('mayEject (Envoy: within maxEjectionPercent, but always one)', () => {
  it('always lets the first endpoint go, however small the cluster', () => {
    expect(mayEject(0, 2, 10)).toBe(true);
    expect(mayEject(0, 1, 10)).toBe(true);
    expect(mayEject(1, 2, 10)).toBe(false);
  });

  it('lets more go while the ejected share stays within the percentage', () => {
    expect(mayEject(1, 20, 10)).toBe(true); // 2 of 20 = 10%
    expect(mayEject(2, 20, 10)).toBe(false); // 3 of 20 = 15%
    expect(mayEject(2, 4, 100)).toBe(true);
    expect(mayEject(3, 4, 100)).toBe(true);
    expect(mayEject(0, 0, 100)).toBe(false);
  });
});

describe('inPanic (Envoy: under the threshold share of healthy endpoints, balance over all)', () => {
  it('is in panic below the threshold, not at it', () => {
    expect(inPanic(1, 2, 50)).toBe(false);
    expect(inPanic(1, 3, 50)).toBe(true);
    expect(inPanic(0, 1, 50)).toBe(true);
    expect(inPanic(0, 4, 0)).toBe(false); // threshold 0: never, the cluster answers UH instead
    expect(inPanic(0, 0, 50)).toBe(false);
  });
});
