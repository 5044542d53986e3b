// The measured window's arithmetic: counters interpolated at the edges of a window inside a longer load call, and a
// load result turned into the report's RoundResult (CPU seconds per 1,000 requests, MB, probe figures per request).
import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../bench/load/types.ts';
import { roundResult, sampleAt } from '../../bench/run/measure.ts';

const cpu = (total: number, idle: number) => ({ total, idle, steal: 0 });

describe('measured window', () => {
  const samples = [
    { atMs: 0, ticks: 0, load: cpu(0, 0) },
    { atMs: 100, ticks: 10, load: cpu(100, 50) },
    { atMs: 200, ticks: 30, load: cpu(200, 60) },
  ];

  it('interpolates the counters linearly between the samples around a moment', () => {
    expect(sampleAt(samples, 150)).toEqual({ atMs: 150, ticks: 20, load: cpu(150, 55), proxy: undefined });
    expect(sampleAt(samples, 100).ticks).toBe(10);
  });

  it('clamps to the first and last samples outside them', () => {
    expect(sampleAt(samples, -50)).toBe(samples[0]);
    expect(sampleAt(samples, 500)).toBe(samples[2]);
  });

  it('turns a load result and the proxy figures into a RoundResult', () => {
    const load: LoadResult = {
      engine: 'wrk',
      protocol: 'http1',
      mode: 'closed',
      durationS: 2,
      requests: 20_000,
      ok: 19_990,
      errors: { timeout: 10 },
      throughputPerS: 10_000,
      latencyUs: { p50: 1, p90: 2, p99: 3, p999: 4, max: 5, mean: 1.5 },
      percentileCurve: [[50, 1]],
    };
    const probe = {
      pids: [1],
      attachedMs: 2500,
      onCpuNs: 1_000_000_000,
      sendCalls: 20_000,
      recvCalls: 30_000,
      connects: 2,
      accepts: 50,
      connectFailures: 0,
      retransmits: 1,
      lostEvents: 0,
      bpftraceCpus: '0',
      warnings: [],
      raw: [],
    };
    const r = roundResult(2, load, { cpuSeconds: 1.2, peakRssKb: 92_160, probe });
    expect(r).toMatchObject({ round: 2, requests: 20_000, throughputPerS: 10_000, errors: { timeout: 10 } });
    expect(r.cpuSecondsPer1k).toBeCloseTo(0.06);
    expect(r.peakRssMb).toBe(90);
    expect(r.probe).toEqual({
      cpuUsPerRequest: 50,
      socketCallsPerRequest: 2.5,
      newUpstreamConnsPerRequest: 0.0001,
      retransmits: 1,
    });
    // Direct and remote targets have no process to measure.
    expect(roundResult(1, load, {})).toMatchObject({
      cpuSecondsPer1k: undefined,
      peakRssMb: undefined,
      probe: undefined,
    });
  });
});
