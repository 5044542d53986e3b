// Worker thread of the open-loop scheduler (waker.ts): sleeps until the armed slot time with Atomics.wait, which
// (unlike Node's millisecond timers) returns ~0.1 ms after its timeout on this project's VM, so it asks for that
// much less; then posts one message to wake the generator's thread. It spins only when it woke less than 50 µs
// early. The generator meanwhile blocks in epoll like any Node program: it answers sockets at once and leaves
// the CPU to the target instead of spinning between slots.
import { parentPort, workerData } from 'node:worker_threads';

/** Shared with waker.ts: Int32 [0] = arm sequence (−1 = stop), Float64 at byte 8 = slot time (generator clock). */
interface TickerData {
  readonly shared: SharedArrayBuffer;
  /** The generator thread's performance.timeOrigin: slot times are on its clock. */
  readonly timeOrigin: number;
  /** Atomics.wait's usual oversleep: it is asked to return this much before the slot. */
  readonly oversleepMs: number;
}

/** Closer than this to the slot, spinning costs less than another sleep's oversleep. */
const SPIN_MS = 0.05;
/** The shortest sleep worth asking for. */
const MIN_SLEEP_MS = 0.01;

const data = workerData as TickerData;
const seqCell = new Int32Array(data.shared, 0, 1);
const slotCell = new Float64Array(data.shared, 8, 1);
const offsetMs = performance.timeOrigin - data.timeOrigin;
const now = (): number => performance.now() + offsetMs;

/** Waits until `at` unless re-armed first; true when the slot time was reached. */
function reach(at: number, seq: number): boolean {
  for (;;) {
    const leftMs = at - now();
    if (leftMs <= 0) return true;
    if (leftMs <= SPIN_MS) {
      while (now() < at) if (Atomics.load(seqCell, 0) !== seq) return false;
      return true;
    }
    const sleepMs = Math.max(MIN_SLEEP_MS, leftMs - data.oversleepMs);
    if (Atomics.wait(seqCell, 0, seq, sleepMs) !== 'timed-out') return false;
  }
}

let seq = 0;
for (;;) {
  Atomics.wait(seqCell, 0, seq); // until armed (returns at once if already re-armed)
  seq = Atomics.load(seqCell, 0);
  if (seq < 0) break;
  // Not reached: re-armed meanwhile (the generator got to this slot itself, or stopped); take the new arming.
  if (reach(slotCell[0], seq)) parentPort!.postMessage(seq);
}
