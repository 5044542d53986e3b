// A request body kept as it streams upstream, so another attempt can send it again: the one reader of the
// downstream body, it hands each attempt a fresh Readable that starts with every byte read so far and goes on
// with the rest as it arrives. Only up to a limit: past it the bytes still flow to the attempt in flight but
// are no longer kept, and the request can no longer be retried. Built by the runner (pipeline.ts) only for
// requests whose retry policy keeps bodies; a GET without a body never gets one.
import { Readable } from 'node:stream';

/** One attempt's view of the body; its reads pull on the downstream body through the replay. */
class AttemptBody extends Readable {
  private readonly replay: BodyReplay;

  constructor(replay: BodyReplay) {
    super({ highWaterMark: 64 * 1024 });
    this.replay = replay;
  }

  override _read(): void {
    this.replay.wantMore(this);
  }
}

export class BodyReplay {
  private readonly source: Readable;
  private readonly limitBytes: number;
  /** What was read so far; null once it went past the limit. */
  private kept: Buffer[] | null = [];
  private keptBytes = 0;
  private ended = false;
  private current: AttemptBody | null = null;
  /** Told once how the body ended (whenComplete); null when none asked. */
  private waiters: ((kept: readonly Buffer[] | null) => void)[] | null = null;

  constructor(source: Readable, limitBytes: number) {
    this.source = source;
    this.limitBytes = limitBytes;
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onClose);
    // An 'error' is followed by 'close'; a listener keeps it from being thrown.
    source.on('error', noop);
  }

  /** Every byte read so far is still kept (or the body ended within the limit): another attempt can have it. */
  get replayable(): boolean {
    return this.kept !== null;
  }

  /**
   * The body for the next attempt: the kept bytes, then the rest as it arrives. The previous attempt's body
   * stops getting bytes. Only while `replayable` (the first attempt's call always is).
   */
  next(): Readable {
    const previous = this.current;
    if (previous !== null) previous.destroy();
    const body = new AttemptBody(this);
    this.current = body;
    for (const chunk of this.kept!) body.push(chunk);
    if (this.ended) body.push(null);
    else if (this.source.isPaused()) this.source.resume();
    return body;
  }

  /**
   * `done` gets the whole body once it has arrived within the limit (the kept chunks, not copied), or null once
   * it cannot be had whole: past the limit, or broken off. At once when that is already known. The mirror
   * (stages/mirror.ts) sends its copy from here.
   */
  whenComplete(done: (kept: readonly Buffer[] | null) => void): void {
    if (this.kept === null) done(null);
    else if (this.ended) done(this.kept);
    else (this.waiters ??= []).push(done);
  }

  private settle(kept: readonly Buffer[] | null): void {
    const waiters = this.waiters;
    if (waiters === null) return;
    this.waiters = null;
    for (const done of waiters) done(kept);
  }

  /** Between two attempts: nothing flows until next() (so the kept bytes can't go past the limit meanwhile). */
  hold(): void {
    this.current = null;
    if (!this.ended) this.source.pause();
  }

  /** The attempt's reader wants more: let the downstream body flow again. */
  wantMore(body: AttemptBody): void {
    if (body === this.current && !this.ended) this.source.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    const kept = this.kept;
    if (kept !== null) {
      this.keptBytes += chunk.length;
      if (this.keptBytes <= this.limitBytes) kept.push(chunk);
      else {
        this.kept = null;
        this.settle(null);
      }
    }
    const body = this.current;
    if (body === null) {
      this.source.pause();
      return;
    }
    if (!body.push(chunk)) this.source.pause();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.current?.push(null);
    this.settle(this.kept);
  };

  /** The downstream body broke off (the client went away, a malformed body): so does the attempt's. */
  private readonly onClose = (): void => {
    if (this.ended) return;
    this.kept = null;
    this.current?.destroy();
    this.current = null;
    this.settle(null);
  };
}

function noop(): void {}
