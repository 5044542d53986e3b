// The open-loop timetable and the load profile: pure arithmetic, no clock.
import { describe, expect, it } from 'vitest';
import {
  buildProfile,
  measuredSeconds,
  offsetInSegment,
  peakValue,
  Timetable,
  valueAt,
} from '../../../bench/load/schedule.ts';
import type { LoadSpec } from '../../../bench/load/types.ts';

const base: LoadSpec = {
  url: 'http://127.0.0.1:1/',
  protocol: 'http1',
  mode: 'open',
  engine: 'builtin',
  connections: 4,
  durationS: 2,
};

function allSlots(spec: LoadSpec): number[] {
  const t = new Timetable(buildProfile(spec));
  const out: number[] = [];
  for (let at = t.next(); at !== Infinity; at = t.next()) out.push(at);
  return out;
}

describe('open-loop timetable', () => {
  it('spaces a constant rate evenly: rate × duration slots, each 1/rate apart, the first half an interval in', () => {
    const slots = allSlots({ ...base, ratePerS: 1000, durationS: 2 });
    expect(slots).toHaveLength(2000);
    expect(slots[0]).toBeCloseTo(0.5, 9);
    for (let i = 1; i < slots.length; i++) expect(slots[i] - slots[i - 1]).toBeCloseTo(1, 9);
    expect(slots.at(-1)).toBeLessThan(2000);
  });

  it('puts the warm-up before the measured window at the same rate', () => {
    const spec: LoadSpec = { ...base, ratePerS: 100, durationS: 2, warmupS: 1 };
    const profile = buildProfile(spec);
    expect(profile.measureFromMs).toBe(1000);
    expect(measuredSeconds(profile)).toBe(2);
    const slots = allSlots(spec);
    expect(slots.filter((t) => t < 1000)).toHaveLength(100);
    expect(slots.filter((t) => t >= 1000)).toHaveLength(200);
  });

  it('follows a linear ramp: the count in each stretch is the area under the rate line', () => {
    // 0 → 200/s over 2 s, hold 200/s for 1 s, 200 → 0 over 1 s.
    const spec: LoadSpec = {
      ...base,
      stages: [
        { durationS: 2, target: 200 },
        { durationS: 1, target: 200 },
        { durationS: 1, target: 0 },
      ],
    };
    const slots = allSlots(spec);
    const between = (a: number, b: number) => slots.filter((t) => t >= a && t < b).length;
    expect(slots).toHaveLength(200 + 200 + 100);
    expect(between(0, 1000)).toBe(50); // area of the first half of the ramp: ½ · 1 s · 100/s
    expect(between(1000, 2000)).toBe(150);
    expect(between(2000, 3000)).toBe(200);
    expect(between(3000, 4000)).toBe(100);
    // Gaps shrink while the rate climbs and grow while it falls.
    expect(slots[1] - slots[0]).toBeGreaterThan(slots[41] - slots[40]);
    expect(slots.at(-1)! - slots.at(-2)!).toBeGreaterThan(slots[350] - slots[349]);
  });

  it('starts a ramp from rampStart when given', () => {
    const slots = allSlots({ ...base, rampStart: 100, stages: [{ durationS: 1, target: 100 }] });
    expect(slots).toHaveLength(100);
    expect(slots[0]).toBeCloseTo(5, 9);
  });

  it('solves the quadratic inside a segment (and says when the area lies beyond it)', () => {
    const seg = { durationMs: 1000, from: 0, to: 100 };
    // area(t) = 50·t² (t in s): 12.5 requests are due at t = 0.5 s.
    expect(offsetInSegment(seg, 12.5)).toBeCloseTo(500, 6);
    expect(offsetInSegment(seg, 50)).toBeCloseTo(1000, 6);
    expect(offsetInSegment(seg, 50.01)).toBeUndefined();
    expect(offsetInSegment({ durationMs: 1000, from: 0, to: 0 }, 0.5)).toBeUndefined();
  });
});

describe('load profile', () => {
  it('gives the value at any time and the peak (closed loop: connections to open)', () => {
    const profile = buildProfile({
      ...base,
      mode: 'closed',
      warmupS: 1,
      stages: [
        { durationS: 2, target: 9 },
        { durationS: 1, target: 3 },
      ],
    });
    expect(valueAt(profile, 500)).toBe(1); // warm-up holds the start (closed loop: 1 connection)
    expect(valueAt(profile, 2000)).toBe(5);
    expect(valueAt(profile, 3500)).toBe(6);
    expect(valueAt(profile, 4000)).toBe(0);
    expect(peakValue(profile)).toBe(9);
    expect(measuredSeconds(profile)).toBe(3);
  });

  it('is constant at the connection count for a closed loop without stages', () => {
    const profile = buildProfile({ ...base, mode: 'closed', connections: 7 });
    expect(valueAt(profile, 0)).toBe(7);
    expect(valueAt(profile, 1999)).toBe(7);
    expect(peakValue(profile)).toBe(7);
  });
});
