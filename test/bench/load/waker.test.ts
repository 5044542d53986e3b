// The open-loop scheduler's wakers: each calls back once per arming, never before the armed time, and a new
// arming replaces the one pending.
import { describe, expect, it } from 'vitest';
import { type SlotWaker, spinWaker, tickerWaker } from '../../../bench/load/waker.ts';
import { waitFor } from '../../support/wait-for.ts';

const kinds: [string, (fn: () => void) => SlotWaker][] = [
  ['ticker', (fn) => tickerWaker(fn, 0.08)],
  ['spin', (fn) => spinWaker(fn, 2)],
];

describe.each(kinds)('%s waker', (_name, make) => {
  it('calls back once per arming, never before the armed time', async () => {
    const calls: number[] = [];
    const waker = make(() => calls.push(performance.now()));
    await waker.start();
    try {
      const armed: number[] = [];
      for (let i = 0; i < 5; i++) {
        const at = performance.now() + 3 + i;
        armed.push(at);
        waker.wakeAt(at);
        await waitFor(() => calls.length === i + 1, 2000, 1);
      }
      calls.forEach((t, i) => expect(t).toBeGreaterThanOrEqual(armed[i]));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(calls).toHaveLength(5);
    } finally {
      await waker.close();
    }
  });

  it('lets a new arming replace the pending one', async () => {
    const calls: number[] = [];
    const waker = make(() => calls.push(performance.now()));
    await waker.start();
    try {
      const first = performance.now() + 5;
      waker.wakeAt(first);
      const second = first + 20;
      waker.wakeAt(second);
      await waitFor(() => calls.length === 1, 2000, 1);
      expect(calls[0]).toBeGreaterThanOrEqual(second);
      await new Promise((resolve) => setTimeout(resolve, 40));
      expect(calls).toHaveLength(1);
    } finally {
      await waker.close();
    }
  });
});
