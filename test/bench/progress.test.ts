// The progress display of long `skein bench` runs: one line per step when stderr is not a terminal, a redrawn
// bar when it is, log lines that never land inside the bar, and an ETA that scales the plan by reality.
import { describe, expect, it } from 'vitest';
import { Progress, progressBar } from '../../bench/run/progress.ts';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, columns: 100, chunks, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

describe('bench progress', () => {
  it('prints one line per step with percentage and ETA when stderr is not a terminal', () => {
    let now = 0;
    const out = sink(false);
    const p = new Progress(out, 100, () => now);
    p.step('round 1/3 http1-max: direct', 10);
    now = 20_000; // the step took twice its plan
    p.step('round 1/3 http1-max: skein', 10);
    p.log('skein up');
    p.done();
    const lines = out.text().trim().split('\n');
    expect(lines[0]).toBe('[    0s]   0% ETA 1m40s round 1/3 http1-max: direct'); // the plan, unscaled
    // 10 of 100 planned seconds done in 20 s: 90 planned seconds left at that pace take 180 s.
    expect(lines[1]).toBe('[   20s]  10% ETA 3m00s round 1/3 http1-max: skein');
    expect(lines[2]).toBe('[   20s] skein up');
    expect(out.text()).not.toContain('\r');
  });

  it('redraws a bar on a terminal and clears it before a log line', () => {
    const out = sink(true);
    const p = new Progress(out, 10, () => 0);
    p.step('warm-up', 5);
    p.log('hello');
    p.done();
    const text = out.text();
    expect(text).toContain(`\r\x1b[2K${progressBar(0, 24)}`);
    expect(text).toContain('\r\x1b[2K[    0s] hello\n');
    expect(text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('draws the bar in proportion', () => {
    expect(progressBar(0.5, 10)).toBe('[#####.....]');
    expect(progressBar(2, 4)).toBe('[####]');
  });
});

describe('bench progress as JSON lines (--progress json, what control reads)', () => {
  it('writes a step event per step and log events, each one JSON object per line', () => {
    let now = 0;
    const out = sink(false);
    const p = new Progress(out, 100, () => now, 'json');
    p.step('round 1/3 http1-max: direct', 10);
    now = 5_000;
    p.log('direct up');
    now = 10_000;
    p.step('round 1/3 http1-max: skein', 10);
    p.done();
    const events = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toEqual([
      { type: 'step', elapsedS: 0, percent: 0, etaS: 100, step: 'round 1/3 http1-max: direct' },
      { type: 'log', elapsedS: 5, message: 'direct up' },
      { type: 'step', elapsedS: 10, percent: 10, etaS: 90, step: 'round 1/3 http1-max: skein' },
    ]);
  });
});
