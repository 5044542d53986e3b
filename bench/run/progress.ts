// Progress of a long benchmark on stderr: a redrawn bar with the current step and an ETA when stderr is a
// terminal, one line per step otherwise (CI logs, files), or JSON lines for a program that runs the bench
// (control's job API: --progress json). Log lines go through here too so they never collide with the bar. The plan's seconds are what the steps are expected to take; the ETA scales them by
// how far reality has run behind the plan so far.

export interface ProgressSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(chunk: string): unknown;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** What --progress json writes, one object per line. */
export type ProgressEvent =
  | { type: 'step'; elapsedS: number; percent: number; etaS: number; step: string }
  | { type: 'tick'; elapsedS: number; percent: number; etaS: number; step: string }
  | { type: 'log'; elapsedS: number; message: string };

export type ProgressMode = 'auto' | 'json';

export class Progress {
  readonly #out: ProgressSink;
  readonly #tty: boolean;
  readonly #json: boolean;
  readonly #now: () => number;
  #plannedS: number;
  #doneS = 0;
  #stepS = 0;
  #stepStartedMs = 0;
  #startedMs: number;
  #label = '';
  #timer: NodeJS.Timeout | undefined;
  #barShown = false;

  constructor(out: ProgressSink, plannedS: number, now: () => number = Date.now, mode: ProgressMode = 'auto') {
    this.#out = out;
    this.#json = mode === 'json';
    this.#tty = !this.#json && out.isTTY === true;
    this.#plannedS = plannedS;
    this.#now = now;
    this.#startedMs = now();
  }

  /** Adds to the plan (a step discovered late, e.g. a phase's start-up). */
  extend(seconds: number): void {
    this.#plannedS += seconds;
  }

  /** Starts a step expected to take `plannedS`; the previous one counts as done. */
  step(label: string, plannedS: number): void {
    this.#finishStep();
    this.#label = label;
    this.#stepS = plannedS;
    this.#stepStartedMs = this.#now();
    if (this.#json) {
      // A tick every second: a step can last minutes, and the reader wants the percentage to move.
      this.#timer ??= setInterval(() => this.#event('tick'), 1000).unref();
      this.#event('step');
    } else if (this.#tty) {
      this.#timer ??= setInterval(() => this.#draw(), 250).unref();
      this.#draw();
    } else {
      this.#out.write(`${this.#stamp()} ${this.#status()} ${label}\n`);
    }
  }

  log(line: string): void {
    if (this.#json) {
      this.#write({ type: 'log', elapsedS: this.#elapsedS(), message: line });
      return;
    }
    this.#clearBar();
    this.#out.write(`${this.#stamp()} ${line}\n`);
    if (this.#tty && this.#timer !== undefined) this.#draw();
  }

  done(): void {
    this.#finishStep();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clearBar();
  }

  /** Share of the plan done, counting the running step by its elapsed time (never past its plan). */
  fraction(): number {
    if (this.#plannedS <= 0) return 1;
    const inStep = this.#label === '' ? 0 : Math.min(this.#stepS, (this.#now() - this.#stepStartedMs) / 1000);
    return Math.min(1, (this.#doneS + inStep) / this.#plannedS);
  }

  /**
   * Seconds left: the plan's remainder, scaled by elapsed ÷ planned-so-far once a tenth of the plan is done
   * (before that, start-up costs would scale the whole remainder wildly).
   */
  etaS(): number {
    const f = this.fraction();
    const remaining = this.#plannedS * (1 - f);
    const elapsed = (this.#now() - this.#startedMs) / 1000;
    if (f < 0.1) return remaining;
    return remaining * (elapsed / (f * this.#plannedS));
  }

  #elapsedS(): number {
    return Math.round((this.#now() - this.#startedMs) / 100) / 10;
  }

  #event(type: 'step' | 'tick'): void {
    if (this.#label === '') return;
    const percent = Math.floor(this.fraction() * 1000) / 10;
    this.#write({ type, elapsedS: this.#elapsedS(), percent, etaS: Math.round(this.etaS()), step: this.#label });
  }

  #write(event: ProgressEvent): void {
    this.#out.write(`${JSON.stringify(event)}\n`);
  }

  #finishStep(): void {
    if (this.#label !== '') this.#doneS += this.#stepS;
    this.#label = '';
  }

  #stamp(): string {
    return `[${clock((this.#now() - this.#startedMs) / 1000).padStart(6)}]`;
  }

  #status(): string {
    return `${String(Math.floor(this.fraction() * 100)).padStart(3)}% ETA ${clock(this.etaS())}`;
  }

  #draw(): void {
    const width = Math.max(40, (this.#out.columns ?? 100) - 1);
    const line = `${progressBar(this.fraction(), 24)} ${this.#status()}  ${this.#label}`;
    this.#out.write(`\r\x1b[2K${line.slice(0, width)}`);
    this.#barShown = true;
  }

  #clearBar(): void {
    if (this.#barShown) this.#out.write('\r\x1b[2K');
    this.#barShown = false;
  }
}
