// The open-loop generator's waker: it calls back once per arming, never before the armed time; a new arming
// replaces the one pending, and a cancelled arming never calls back.
import { describe, expect, it } from 'vitest';
import { SlotWaker } from '../../../bench/load/waker.ts';
import { waitFor } from '../../support/wait-for.ts';

describe('SlotWaker', () => {
  it('calls back once per arming, never before the armed time', async () => {
    const calls: number[] = [];
    const waker = new SlotWaker(() => calls.push(performance.now()), 2);
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
      waker.cancel();
    }
  });

  it('lets a new arming replace the pending one', async () => {
    const calls: number[] = [];
    const waker = new SlotWaker(() => calls.push(performance.now()), 2);
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
      waker.cancel();
    }
  });

  it('does not call back after cancel', async () => {
    const calls: number[] = [];
    const waker = new SlotWaker(() => calls.push(performance.now()), 2);
    waker.wakeAt(performance.now() + 10);
    waker.cancel();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(calls).toHaveLength(0);
  });
});
