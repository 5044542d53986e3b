// The load profile of a run as pure arithmetic: the target value (open loop: requests per second; closed loop:
// active connections) at any moment, and the open-loop timetable of intended send times derived from it.
// The generator asks these questions; nothing here touches a clock or a socket.
import type { LoadSpec, RampStage } from './types.ts';

/** One straight piece of the profile: the value moves linearly from `from` to `to` over `durationMs`. */
export interface ProfileSegment {
  readonly durationMs: number;
  readonly from: number;
  readonly to: number;
}

/** A piecewise-linear profile over a run: warm-up first, then the measured window. Times in ms from the run start. */
export interface LoadProfile {
  readonly segments: readonly ProfileSegment[];
  /** Where the measured window starts (the warm-up's length). */
  readonly measureFromMs: number;
  readonly totalMs: number;
}

/** The value the first stage ramps from when the spec does not say (k6's defaults: rate 0, one connection). */
export function defaultRampStart(mode: LoadSpec['mode']): number {
  return mode === 'open' ? 0 : 1;
}

/**
 * Builds the profile of a spec. Without stages the value is constant (ratePerS or connections) over warm-up and
 * window. With stages the warm-up holds the ramp's start value and the window is the stages, back to back.
 */
export function buildProfile(spec: LoadSpec): LoadProfile {
  const warmupMs = Math.max(0, (spec.warmupS ?? 0) * 1000);
  const constant = spec.mode === 'open' ? (spec.ratePerS ?? 0) : spec.connections;
  const segments: ProfileSegment[] = [];
  if (spec.stages === undefined || spec.stages.length === 0) {
    if (warmupMs > 0) segments.push({ durationMs: warmupMs, from: constant, to: constant });
    const durationMs = spec.durationS * 1000;
    segments.push({ durationMs, from: constant, to: constant });
  } else {
    const start = spec.rampStart ?? defaultRampStart(spec.mode);
    if (warmupMs > 0) segments.push({ durationMs: warmupMs, from: start, to: start });
    segments.push(...stageSegments(start, spec.stages));
  }
  const totalMs = segments.reduce((sum, s) => sum + s.durationMs, 0);
  return { segments, measureFromMs: warmupMs, totalMs };
}

function stageSegments(start: number, stages: readonly RampStage[]): ProfileSegment[] {
  let from = start;
  return stages.map((stage) => {
    const segment = { durationMs: stage.durationS * 1000, from, to: stage.target };
    from = stage.target;
    return segment;
  });
}

/** Measured window length in seconds. */
export function measuredSeconds(profile: LoadProfile): number {
  return (profile.totalMs - profile.measureFromMs) / 1000;
}

/** The profile's value at `tMs` (0 before the start and after the end). */
export function valueAt(profile: LoadProfile, tMs: number): number {
  let offset = 0;
  for (const s of profile.segments) {
    if (tMs < offset + s.durationMs) {
      if (tMs < offset) return 0;
      return s.from + ((s.to - s.from) * (tMs - offset)) / s.durationMs;
    }
    offset += s.durationMs;
  }
  return 0;
}

/** The largest value anywhere in the profile (closed loop: how many connections to open). */
export function peakValue(profile: LoadProfile): number {
  return profile.segments.reduce((max, s) => Math.max(max, s.from, s.to), 0);
}

/**
 * Intended send times of an open-loop run, in ms from the run start, ascending. Request k leaves when the
 * integral of the rate reaches k + ½, so a constant rate r gives slots ½/r, 3/2r, … and exactly r·T requests in
 * any window of length T whose ends are slot boundaries; a linear ramp solves the quadratic in closed form.
 */
export class Timetable {
  readonly #segments: readonly ProfileSegment[];
  #segment = 0;
  /** Run time at which the current segment starts, ms. */
  #segmentStartMs = 0;
  /** Requests (area under the rate) before the current segment. */
  #areaBefore = 0;
  #k = 0;

  constructor(profile: LoadProfile) {
    this.#segments = profile.segments;
  }

  /** The next intended send time in ms from the run start, or Infinity when the profile is over. */
  next(): number {
    const wanted = this.#k + 0.5;
    while (this.#segment < this.#segments.length) {
      const s = this.#segments[this.#segment];
      const t = offsetInSegment(s, wanted - this.#areaBefore);
      if (t !== undefined) {
        this.#k++;
        return this.#segmentStartMs + t;
      }
      this.#areaBefore += segmentArea(s);
      this.#segmentStartMs += s.durationMs;
      this.#segment++;
    }
    return Infinity;
  }
}

/** Requests in a whole segment: the area under its rate line (rate per second, duration in ms). */
function segmentArea(s: ProfileSegment): number {
  return ((s.from + s.to) / 2) * (s.durationMs / 1000);
}

/** Time into the segment (ms) at which `area` requests have been due, or undefined when that is past its end. */
export function offsetInSegment(s: ProfileSegment, area: number): number | undefined {
  if (area > segmentArea(s)) return undefined;
  const r0 = s.from;
  const slope = (s.to - s.from) / (s.durationMs / 1000); // rate change per second
  let tS: number;
  if (Math.abs(slope) < 1e-12) {
    if (r0 <= 0) return undefined;
    tS = area / r0;
  } else {
    // r0·t + slope·t²/2 = area; the form 2·area / (r0 + √(r0² + 2·slope·area)) avoids cancellation.
    const disc = r0 * r0 + 2 * slope * area;
    if (disc < 0) return undefined;
    const denom = r0 + Math.sqrt(disc);
    if (denom <= 0) return undefined;
    tS = (2 * area) / denom;
  }
  const tMs = tS * 1000;
  return tMs <= s.durationMs ? tMs : undefined;
}
