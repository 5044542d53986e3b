// How the open-loop generator gets control back at a slot's time (performance.now() ms): a timer until
// spinWindowMs before the slot, then setImmediate turns, which still poll the sockets. On time even where a
// sleeping thread wakes late (Node's timers have millisecond granularity), at the price of a busy core above
// ~500 slots/s.
export class SlotWaker {
  readonly #fn: () => void;
  readonly #spinWindowMs: number;
  #armed = Infinity;
  #pending = false;

  constructor(fn: () => void, spinWindowMs: number) {
    this.#fn = fn;
    this.#spinWindowMs = spinWindowMs;
  }

  /** Calls the function once at `at` (or as soon as possible after it), replacing the pending arming. */
  wakeAt(at: number): void {
    this.#armed = at;
    this.#schedule(performance.now());
  }

  /** Drops the pending arming: the function is not called again until the next wakeAt. */
  cancel(): void {
    this.#armed = Infinity;
  }

  readonly #check = (): void => {
    this.#pending = false;
    if (this.#armed === Infinity) return;
    const now = performance.now();
    if (now >= this.#armed) {
      this.#armed = Infinity;
      this.#fn();
      return;
    }
    this.#schedule(now);
  };

  #schedule(now: number): void {
    if (this.#pending) return;
    this.#pending = true;
    const sleepMs = this.#armed - now - this.#spinWindowMs;
    if (sleepMs > 0) setTimeout(this.#check, sleepMs);
    else setImmediate(this.#check);
  }
}
