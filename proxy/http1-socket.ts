// The reads and writes of one downstream HTTP/1.1 connection. The request parser consumes the socket's
// handle directly when it can (the kernel's bytes go to llhttp without a JS Buffer or a 'data' event per
// read: measured ~3 µs per request cheaper), reading stops and starts for named reasons, and response bytes
// go out in as few writes as their sizes allow.
import type net from 'node:net';
import type { LlhttpParser } from './upstream/llhttp.ts';
import { HTTPParser } from './upstream/llhttp.ts';

/** Why the socket is not being read (bits; reading resumes when none is left). */
export const PAUSE_BODY = 1; // the request body's consumer is behind
export const PAUSE_QUEUE = 2; // too many pipelined requests wait for their turn
export const PAUSE_HELD = 4; // nothing more will be parsed (error answered, closing, or an upgrade waiting)

/** A body chunk up to this size goes into the same string as the head: one write, no writev bookkeeping. */
const COALESCE_BYTES = 4096;

/** The part of a TCP/TLS handle the parser consumes from; `reading` is the flag net.Socket keeps on it. */
interface StreamHandle {
  reading: boolean;
  isStreamBase?: boolean;
  readStart(): number;
  readStop(): number;
}

/** Called after each read is parsed: llhttp's result, and the bytes when they came as a Buffer. */
export type AfterExecute = (ret: number | Error, chunk: Buffer | null) => void;

export class Http1Socket {
  readonly socket: net.Socket;
  /** The handle the parser consumes, or null when it is fed from 'data' events (a non-StreamBase socket). */
  private handle: StreamHandle | null = null;
  private parser: LlhttpParser | null = null;
  private afterExecute: AfterExecute | null = null;
  private pauseReasons = 0;

  constructor(socket: net.Socket) {
    this.socket = socket;
  }

  /** Starts feeding `parser`; returns bytes the socket's stream had already read (with `first` in front). */
  attach(parser: LlhttpParser, afterExecute: AfterExecute, first: Buffer | null): Buffer | null {
    const socket = this.socket;
    this.parser = parser;
    this.afterExecute = afterExecute;
    let buffered = first;
    if (socket.readableLength > 0) {
      const more = socket.read() as Buffer | null;
      if (more !== null) buffered = buffered === null ? more : Buffer.concat([buffered, more]);
    }
    const handle = (socket as unknown as { _handle?: StreamHandle })._handle;
    if (handle?.isStreamBase === true) {
      this.handle = handle;
      parser[HTTPParser.kOnExecute] = (ret: number | Error) => afterExecute(ret, null);
      parser.consume(handle);
      // net.Socket stopped reading if its own buffer filled; it never fills again, so (re)start it here.
      if (!handle.reading) {
        handle.reading = true;
        handle.readStart();
      }
    } else socket.on('data', this.onData);
    return buffered;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.parser !== null) this.afterExecute!(this.parser.execute(chunk), chunk);
  };

  /**
   * Stops parsing for good and frees the parser. `handOver`: another reader takes the socket (a tunnel), so
   * reading restarts; the socket's stream buffers the bytes until that reader pipes it.
   */
  detach(handOver: boolean): void {
    const parser = this.parser;
    if (parser === null) return;
    this.parser = null;
    const h = this.handle;
    if (h !== null) parser.unconsume();
    else this.socket.off('data', this.onData);
    parser.free();
    if (!handOver) return;
    if (h !== null && !h.reading) {
      h.reading = true;
      h.readStart();
    } else if (h === null) this.socket.pause();
  }

  pause(reason: number): void {
    if (this.pauseReasons === 0) {
      const h = this.handle;
      if (h === null) this.socket.pause();
      else if (h.reading) {
        h.reading = false;
        h.readStop();
      }
    }
    this.pauseReasons |= reason;
  }

  resume(reason: number): void {
    if ((this.pauseReasons & reason) === 0) return;
    this.pauseReasons &= ~reason;
    if (this.pauseReasons !== 0 || this.parser === null) return;
    const h = this.handle;
    if (h === null) this.socket.resume();
    else if (!h.reading) {
      h.reading = true;
      h.readStart();
    }
  }

  /**
   * Closing: keep reading (what arrives is ignored) until the client's FIN. Closing a socket with unread bytes
   * makes the kernel send a reset, which can destroy the response the client has not read yet.
   */
  readUntilEnd(): void {
    this.pauseReasons = PAUSE_HELD;
    this.resume(PAUSE_HELD);
  }

  writeString(s: string): void {
    this.socket.write(s, 'latin1');
  }

  /**
   * Writes an optional head, then `before` + chunk + `after` (chunk framing), in one write when the chunk is
   * small. Returns false when the socket's buffer is full (the caller pauses the upstream until 'drain').
   */
  send(head: string | null, before: string, chunk: Buffer, after: string): boolean {
    const socket = this.socket;
    if (head === null && before === '' && after === '') return socket.write(chunk);
    if (chunk.length <= COALESCE_BYTES) {
      return socket.write(`${head ?? ''}${before}${chunk.toString('latin1')}${after}`, 'latin1');
    }
    socket.cork();
    socket.write(head === null ? before : head + before, 'latin1');
    let ok = socket.write(chunk);
    if (after !== '') ok = socket.write(after, 'latin1');
    socket.uncork();
    return ok;
  }
}
