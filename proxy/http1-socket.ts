// The reads and writes of one downstream HTTP/1.1 connection: reads feed the request parser (llhttp.ts's
// ParserFeed: from the socket's handle when it can), stopping and starting for named reasons; response bytes
// go out in as few writes as their sizes allow.
import { ParserFeed } from './llhttp.ts';

/** Why the socket is not being read (bits; reading resumes when none is left). */
export const PAUSE_BODY = 1; // the request body's consumer is behind
export const PAUSE_QUEUE = 2; // too many pipelined requests wait for their turn
export const PAUSE_HELD = 4; // nothing more will be parsed (error answered, closing, or an upgrade waiting)

/** A body chunk up to this size goes into the same string as the head: one write, no writev bookkeeping. */
const COALESCE_BYTES = 4096;

export class Http1Socket extends ParserFeed {
  /**
   * Closing: keep reading (what arrives is ignored) until the client's FIN. Closing a socket with unread bytes
   * makes the kernel send a reset, which can destroy the response the client has not read yet.
   */
  readUntilEnd(): void {
    this.resumeAll();
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
