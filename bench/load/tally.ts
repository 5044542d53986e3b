// What one built-in run counts: latency and generator-lag histograms, outcomes by kind, for the requests that
// belong to the measured window (those whose start, intended or actual, is at or after the window opens).
import type { Histogram } from 'hdr-histogram-js';
import { lagSummary, latencySummary, newHistogram, percentileCurve, recordUs } from './histogram.ts';
import type { LoadResult, LoadSpec } from './types.ts';

export class Tally {
  readonly latency: Histogram = newHistogram();
  readonly lag: Histogram = newHistogram();
  readonly errors = new Map<string, number>();
  ok = 0;
  messages = 0;
  queued = 0;
  /** Open loop: slots of the timetable inside the window. */
  scheduled = 0;
  /** performance.now() at which the measured window opens (Infinity until the run starts). */
  measureFrom = Infinity;

  inWindow(startedAt: number): boolean {
    return startedAt >= this.measureFrom;
  }

  /** One outcome; `latencyMs` is recorded unless undefined (transport errors have no meaningful latency). */
  outcome(error: string | undefined, latencyMs: number | undefined): void {
    if (error === undefined) this.ok++;
    else this.errors.set(error, (this.errors.get(error) ?? 0) + 1);
    if (latencyMs !== undefined) recordUs(this.latency, latencyMs * 1000);
  }

  lagMs(ms: number): void {
    recordUs(this.lag, ms * 1000);
  }

  get requests(): number {
    let n = this.ok;
    for (const count of this.errors.values()) n += count;
    return n;
  }

  result(spec: LoadSpec, durationS: number): LoadResult {
    const requests = this.requests;
    const open = spec.mode === 'open';
    const constantRate = spec.stages === undefined || spec.stages.length === 0;
    return {
      engine: 'builtin',
      protocol: spec.protocol,
      mode: spec.mode,
      durationS,
      requests,
      ok: this.ok,
      errors: Object.fromEntries([...this.errors].sort((a, b) => a[0].localeCompare(b[0]))),
      throughputPerS: durationS > 0 ? requests / durationS : 0,
      ...(open ? { targetRatePerS: constantRate ? (spec.ratePerS ?? 0) : this.scheduled / durationS } : {}),
      latencyUs: latencySummary(this.latency),
      percentileCurve: percentileCurve(this.latency),
      ...(open ? { lag: lagSummary(this.lag), queued: this.queued } : {}),
      ...(spec.protocol === 'grpc-server-stream' ? { messages: this.messages } : {}),
    };
  }
}
