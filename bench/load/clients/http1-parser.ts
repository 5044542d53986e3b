// The smallest HTTP/1.1 response parser the load generator needs: find the end of each response on a
// keep-alive connection and report its status. It reads the status line and three headers (Content-Length,
// Transfer-Encoding: chunked, Connection: close), skips bodies and trailers, and copies bytes only when a
// head or a chunk-size line is split across reads.

const LF = 0x0a; // chunk lines end at "\n" (a "\r" before it is dropped): tolerant of bare LF, like most clients
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;

const STATE = {
  head: 0,
  body: 1,
  chunkSize: 2,
  chunkData: 3,
  chunkDataEnd: 4,
  trailers: 5,
  untilClose: 6,
} as const;
type State = (typeof STATE)[keyof typeof STATE];

export class Http1ParseError extends Error {}

export class Http1ResponseParser {
  #state: State = STATE.head;
  /** Bytes of a head or chunk-size line split across reads. */
  #pending: Buffer | null = null;
  #remaining = 0;
  #status = 0;
  #keepAlive = true;
  readonly #onResponse: (status: number, keepAlive: boolean) => void;

  /** `keepAlive` is false when the server will close the connection after this response. */
  constructor(onResponse: (status: number, keepAlive: boolean) => void) {
    this.#onResponse = onResponse;
  }

  /** True between responses: no partial response has been read. */
  get idle(): boolean {
    return this.#state === STATE.head && this.#pending === null;
  }

  /** Feeds bytes from the socket; calls onResponse for each response completed. Throws Http1ParseError. */
  feed(chunk: Buffer): void {
    let buf = chunk;
    let at = 0;
    while (at < buf.length) {
      switch (this.#state) {
        case STATE.head: {
          if (this.#pending !== null) {
            buf = Buffer.concat([this.#pending, buf.subarray(at)]);
            at = 0;
            this.#pending = null;
          }
          const end = buf.indexOf(HEAD_END, at);
          if (end === -1) {
            if (buf.length - at > MAX_HEAD_BYTES) throw new Http1ParseError('response head over 64 KiB');
            this.#pending = Buffer.from(buf.subarray(at));
            return;
          }
          this.#onHead(buf.toString('latin1', at, end + 2));
          at = end + 4;
          break;
        }
        case STATE.body: {
          const n = Math.min(this.#remaining, buf.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#complete();
          break;
        }
        case STATE.chunkSize:
        case STATE.trailers: {
          const line = this.#readLine(buf, at);
          if (line === undefined) return;
          buf = line.buf;
          at = line.next;
          if (this.#state === STATE.chunkSize) this.#onChunkSize(line.text);
          else if (line.text === '') this.#complete();
          break;
        }
        case STATE.chunkData: {
          const n = Math.min(this.#remaining, buf.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) {
            this.#state = STATE.chunkDataEnd;
            this.#remaining = 2;
          }
          break;
        }
        case STATE.chunkDataEnd: {
          const n = Math.min(this.#remaining, buf.length - at);
          at += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = STATE.chunkSize;
          break;
        }
        case STATE.untilClose:
          return;
      }
    }
  }

  /** The connection closed: completes a response whose body runs to the close; true if there was one. */
  end(): boolean {
    if (this.#state !== STATE.untilClose) return false;
    this.#complete();
    return true;
  }

  #readLine(buf: Buffer, at: number): { text: string; next: number; buf: Buffer } | undefined {
    if (this.#pending !== null) {
      buf = Buffer.concat([this.#pending, buf.subarray(at)]);
      at = 0;
      this.#pending = null;
    }
    const nl = buf.indexOf(LF, at);
    if (nl === -1) {
      if (buf.length - at > 4096) throw new Http1ParseError('chunk-size or trailer line over 4 KiB');
      this.#pending = Buffer.from(buf.subarray(at));
      return undefined;
    }
    const lineEnd = nl > at && buf[nl - 1] === 0x0d ? nl - 1 : nl;
    return { text: buf.toString('latin1', at, lineEnd), next: nl + 1, buf };
  }

  #onHead(head: string): void {
    // "HTTP/1.1 200 OK\r\n…": the status is always at bytes 9–11.
    if (!head.startsWith('HTTP/1.')) throw new Http1ParseError(`not an HTTP/1.x response: ${head.slice(0, 40)}`);
    const status = Number(head.slice(9, 12));
    if (!Number.isInteger(status) || status < 100) throw new Http1ParseError(`bad status line: ${head.slice(0, 40)}`);
    if (status >= 100 && status < 200 && status !== 101) return; // interim response: the real one follows
    const lower = head.toLowerCase();
    this.#status = status;
    const connection = /\r\nconnection:[ \t]*([^\r]*)/.exec(lower)?.[1] ?? '';
    this.#keepAlive = head[7] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    if (status === 204 || status === 304) {
      this.#complete();
    } else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.#state = STATE.chunkSize;
    } else {
      const length = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
      if (length !== null) {
        this.#remaining = Number(length[1]);
        if (this.#remaining === 0) this.#complete();
        else this.#state = STATE.body;
      } else {
        this.#state = STATE.untilClose;
        this.#keepAlive = false;
      }
    }
  }

  #onChunkSize(line: string): void {
    const semi = line.indexOf(';');
    const size = Number.parseInt(semi === -1 ? line : line.slice(0, semi), 16);
    if (!Number.isFinite(size) || size < 0) throw new Http1ParseError(`bad chunk size: ${line.slice(0, 20)}`);
    if (size === 0) {
      this.#state = STATE.trailers;
    } else {
      this.#state = STATE.chunkData;
      this.#remaining = size;
    }
  }

  #complete(): void {
    this.#state = STATE.head;
    this.#onResponse(this.#status, this.#keepAlive);
  }
}
