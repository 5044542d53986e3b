// The built-in generator's run loop, meant to own its event loop (it runs in a child process, see builtin.ts).
// Open loop: requests are due on a fixed timetable; each due slot goes to a free connection or waits in a FIFO
// queue for one, and its latency runs from the slot's intended time, so a stalled target shows in every request
// it delayed (no coordinated omission). A waker (waker.ts) brings the thread back at each slot: a timer to 2 ms
// before it, then setImmediate turns that keep polling the sockets. Closed loop: each connection
// (or stream slot) sends its next request as soon as the previous answer arrives.
import type { ClientOptions, LoadConnection, RequestSink } from './clients/connection.ts';
import { connectionFactories } from './clients/registry.ts';
import { buildProfile, type LoadProfile, measuredSeconds, peakValue, Timetable, valueAt } from './schedule.ts';
import { Tally } from './tally.ts';
import type { LoadResult, LoadSpec } from './types.ts';
import { SlotWaker } from './waker.ts';

export const DEFAULT_TIMEOUT_MS = 5000;
/** Open-loop streams in flight per h2 connection when the spec does not cap them (the peer's limit still applies). */
const OPEN_LOOP_STREAMS = 1000;
/** Closed loop: how often the connection count follows the ramp, and how long a slot waits after a transport error. */
const CLOSED_TICK_MS = 10;

export interface GeneratorTuning {
  /** Open loop: sleep on a timer until this close to a slot, then spin (waker.ts). */
  readonly spinWindowMs: number;
}

/**
 * On this project's VM (2 vCPUs, quiet) a 2 ms window kept the p99 lag at 1,000/s to 30–130 µs; a worker thread
 * sleeping with Atomics.wait until each slot, tried before, used a sixth of the CPU but reached 0.6–1.3 ms.
 */
export const DEFAULT_TUNING: GeneratorTuning = { spinWindowMs: 2 };

/** A growable FIFO of intended send times (open loop requests waiting for a connection). */
class SlotQueue {
  #buf = new Float64Array(1024);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(t: number): void {
    if (this.#size === this.#buf.length) {
      const bigger = new Float64Array(this.#buf.length * 2);
      for (let i = 0; i < this.#size; i++) bigger[i] = this.#buf[(this.#head + i) % this.#buf.length];
      this.#buf = bigger;
      this.#head = 0;
    }
    this.#buf[(this.#head + this.#size) % this.#buf.length] = t;
    this.#size++;
  }

  peek(): number {
    return this.#buf[this.#head];
  }

  shift(): number {
    const t = this.#buf[this.#head];
    this.#head = (this.#head + 1) % this.#buf.length;
    this.#size--;
    return t;
  }
}

export function clientOptions(spec: LoadSpec): ClientOptions {
  return {
    url: new URL(spec.url),
    payloadBytes: spec.payloadBytes ?? 0,
    tls: spec.tls,
    newConnectionPerRequest: spec.newConnectionPerRequest === true,
    streamsPerConnection: spec.streamsPerConnection ?? (spec.mode === 'closed' ? 1 : OPEN_LOOP_STREAMS),
    streamMessages: spec.streamMessages ?? 10,
  };
}

export class Generator implements RequestSink {
  readonly #spec: LoadSpec;
  readonly #tuning: GeneratorTuning;
  readonly #profile: LoadProfile;
  readonly #timeoutMs: number;
  readonly #tally = new Tally();
  readonly #queue = new SlotQueue();
  #conns: LoadConnection[] = [];
  /** performance.now() at profile time 0. */
  #t0 = 0;
  #endAt = 0;
  #sending = false;
  #rr = 0;
  /** Closed loop: connections allowed to send now (the ramp's value). */
  #active = 0;
  #timetable: Timetable | null = null;
  #waker: SlotWaker | null = null;
  #nextAt = Infinity;
  #timers: NodeJS.Timeout[] = [];
  #finish: (() => void) | null = null;

  constructor(spec: LoadSpec, tuning: GeneratorTuning = DEFAULT_TUNING) {
    this.#spec = spec;
    this.#tuning = tuning;
    this.#profile = buildProfile(spec);
    this.#timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async run(): Promise<LoadResult> {
    const spec = this.#spec;
    const opts = clientOptions(spec);
    const factory = connectionFactories[spec.protocol];
    const count = spec.mode === 'open' ? spec.connections : Math.ceil(peakValue(this.#profile));
    this.#conns = Array.from({ length: Math.max(1, count) }, (_, i) => factory(i, this, opts));
    // Connect before the clock starts, so handshakes are not the first requests' latency.
    await Promise.race([
      Promise.all(this.#conns.map((c) => c.ready())),
      new Promise((resolve) => setTimeout(resolve, this.#timeoutMs)),
    ]);
    if (spec.mode === 'open') this.#waker = new SlotWaker(this.#openTick, this.#tuning.spinWindowMs);
    const finished = new Promise<void>((resolve) => (this.#finish = resolve));
    this.#t0 = performance.now() + 1;
    this.#endAt = this.#t0 + this.#profile.totalMs;
    this.#tally.measureFrom = this.#t0 + this.#profile.measureFromMs;
    this.#sending = true;
    const cpuBefore = process.cpuUsage();
    const sweepMs = Math.min(100, Math.max(5, this.#timeoutMs / 10));
    this.#timers.push(setInterval(() => this.#sweep(), sweepMs));
    if (spec.mode === 'open') this.#startOpen();
    else this.#startClosed();
    await finished;
    const cpu = process.cpuUsage(cpuBefore);
    for (const t of this.#timers) clearInterval(t);
    for (const c of this.#conns) c.close();
    this.#waker?.cancel();
    return {
      ...this.#tally.result(spec, measuredSeconds(this.#profile)),
      generatorCpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
    };
  }

  // ---- RequestSink

  done(conn: LoadConnection, startedAt: number, error: string | undefined, countLatency: boolean): void {
    const now = performance.now();
    if (this.#tally.inWindow(startedAt)) this.#tally.outcome(error, countLatency ? now - startedAt : undefined);
    if (this.#spec.mode === 'open') {
      if (this.#queue.size > 0 && conn.hasRoom()) conn.send(this.#queue.shift());
      // Awake anyway: send what is due now rather than wait for the waker (it stands down when re-armed).
      if (now >= this.#nextAt) this.#openTick();
    } else if (this.#sending && countLatency && conn.index < this.#active && conn.hasRoom()) {
      conn.send(now);
    }
    // else (closed loop): a slot that failed without an answer is refilled on the next tick, so a refused
    // connection is retried 100 times a second, not in a tight loop.
    if (!this.#sending) this.#maybeFinish();
  }

  messages(count: number): void {
    this.#tally.messages += count;
  }

  // ---- open loop

  #startOpen(): void {
    this.#timetable = new Timetable(this.#profile);
    this.#nextAt = this.#t0 + this.#timetable.next();
    if (this.#nextAt === Infinity) this.#stopSending();
    else this.#waker!.wakeAt(this.#nextAt);
  }

  readonly #openTick = (): void => {
    let next = this.#nextAt;
    const tally = this.#tally;
    for (;;) {
      const now = performance.now();
      if (next > now) break;
      if (next >= tally.measureFrom) {
        tally.scheduled++;
        tally.lagMs(now - next);
      }
      this.#dispatch(next);
      next = this.#t0 + this.#timetable!.next();
    }
    this.#nextAt = next;
    if (next === Infinity) this.#stopSending();
    else this.#waker!.wakeAt(next);
  };

  #dispatch(intendedAt: number): void {
    if (this.#queue.size === 0) {
      const conns = this.#conns;
      for (let i = 0; i < conns.length; i++) {
        const conn = conns[(this.#rr + i) % conns.length];
        if (conn.hasRoom()) {
          this.#rr = (conn.index + 1) % conns.length;
          conn.send(intendedAt);
          return;
        }
      }
    }
    if (this.#tally.inWindow(intendedAt)) this.#tally.queued++;
    this.#queue.push(intendedAt);
  }

  // ---- closed loop

  #startClosed(): void {
    this.#closedTick();
    this.#timers.push(setInterval(() => this.#closedTick(), CLOSED_TICK_MS));
  }

  #closedTick(): void {
    if (!this.#sending) return;
    const now = performance.now();
    if (now >= this.#endAt) {
      this.#stopSending();
      return;
    }
    this.#active = Math.round(valueAt(this.#profile, now - this.#t0));
    for (let i = 0; i < this.#active && i < this.#conns.length; i++) {
      const conn = this.#conns[i];
      // Bounded: a connection that keeps saying it has room must not hold the loop.
      for (let n = 0; n < OPEN_LOOP_STREAMS && conn.hasRoom(); n++) conn.send(performance.now());
    }
  }

  // ---- timeouts and the end

  #sweep(): void {
    const now = performance.now();
    const cutoff = this.#sending || now < this.#endAt + this.#timeoutMs + 1000 ? now - this.#timeoutMs : Infinity;
    // Queued slots past their timeout would only ever be timeouts: count them now, with the time they waited.
    while (this.#queue.size > 0 && this.#queue.peek() < cutoff) {
      const intendedAt = this.#queue.shift();
      if (this.#tally.inWindow(intendedAt)) this.#tally.outcome('timeout', now - intendedAt);
    }
    for (const conn of this.#conns) conn.expire(cutoff);
    if (!this.#sending) this.#maybeFinish();
  }

  #stopSending(): void {
    this.#sending = false;
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#finish === null || this.#queue.size > 0) return;
    for (const c of this.#conns) if (c.inFlight > 0) return;
    const finish = this.#finish;
    this.#finish = null;
    finish();
  }
}
