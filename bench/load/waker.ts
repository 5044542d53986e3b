// How the open-loop scheduler gets control back at a slot's time (performance.now() ms), two ways:
//   spin   — a timer until spinWindowMs before the slot, then setImmediate turns (which still poll sockets): on
//            time even where a sleeping thread wakes late, at the price of a busy core above ~500 slots/s. Default.
//   ticker — a worker thread (ticker.ts) sleeps with sub-millisecond precision and posts a message at the slot;
//            the generator's thread blocks in epoll meanwhile and leaves the CPU free, but each wake-up costs a
//            thread wake, which on this project's VM often came later than the 1 ms lag budget.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface SlotWaker {
  /** Starts the waker (the ticker's thread must be running before the first slot). */
  start(): Promise<void>;
  /** Calls the waker's function once at `at` (or as soon as possible after it), replacing the pending arming;
   *  `at` is never earlier than an arming still pending (the timetable only moves forward). */
  wakeAt(at: number): void;
  close(): Promise<void>;
}

export type SchedulerKind = 'ticker' | 'spin';

const TICKER = fileURLToPath(new URL(`./ticker${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export function tickerWaker(fn: () => void, oversleepMs: number): SlotWaker {
  const shared = new SharedArrayBuffer(16);
  const seqCell = new Int32Array(shared, 0, 1);
  const slotCell = new Float64Array(shared, 8, 1);
  let worker: Worker | null = null;
  return {
    async start() {
      worker = new Worker(TICKER, { workerData: { shared, timeOrigin: performance.timeOrigin, oversleepMs } });
      worker.on('message', (seq: number) => {
        // A message for an arming already replaced (the slot was reached another way) is stale.
        if (seq === Atomics.load(seqCell, 0)) fn();
      });
      const w = worker;
      await new Promise<void>((resolve, reject) => {
        w.once('online', resolve);
        w.once('error', reject);
      });
    },
    wakeAt(at) {
      slotCell[0] = at;
      Atomics.add(seqCell, 0, 1);
      Atomics.notify(seqCell, 0);
    },
    async close() {
      Atomics.store(seqCell, 0, -1);
      Atomics.notify(seqCell, 0);
      await worker?.terminate();
      worker = null;
    },
  };
}

export function spinWaker(fn: () => void, spinWindowMs: number): SlotWaker {
  let armed = Infinity;
  let pending = false;
  const check = (): void => {
    pending = false;
    const now = performance.now();
    if (armed === Infinity) return;
    if (now >= armed) {
      armed = Infinity;
      fn();
      return;
    }
    schedule(now);
  };
  const schedule = (now: number): void => {
    if (pending) return;
    pending = true;
    const sleepMs = armed - now - spinWindowMs;
    if (sleepMs > 0) setTimeout(check, sleepMs);
    else setImmediate(check);
  };
  return {
    async start() {},
    wakeAt(at) {
      armed = at;
      schedule(performance.now());
    },
    async close() {
      armed = Infinity;
    },
  };
}
