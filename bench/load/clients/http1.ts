// HTTP/1.1 load client over a raw TCP or TLS socket: keep-alive, one request in flight, the request bytes built
// once per connection and written with one call, responses framed by the minimal parser. No node:http: its
// per-request objects cost more than the proxies under test spend on a request.
import net from 'node:net';
import tls from 'node:tls';
import {
  type ClientOptions,
  type LoadConnection,
  type RequestSink,
  payload,
  statusError,
  tlsOptions,
  transportError,
} from './connection.ts';
import { Http1ParseError, Http1ResponseParser } from './http1-parser.ts';

/** The request every send writes: GET without a body, or POST with `payloadBytes` of body. */
export function http1Request(url: URL, payloadBytes: number): Buffer {
  const path = `${url.pathname}${url.search}` || '/';
  const head =
    payloadBytes > 0
      ? `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: skein-bench\r\n` +
        `content-type: application/octet-stream\r\ncontent-length: ${payloadBytes}\r\n\r\n`
      : `GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: skein-bench\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload(payloadBytes)]);
}

export class Http1Connection implements LoadConnection {
  readonly index: number;
  readonly #sink: RequestSink;
  readonly #url: URL;
  readonly #secure: boolean;
  readonly #tls: ClientOptions['tls'];
  readonly #request: Buffer;
  #socket: net.Socket | null = null;
  #connected = false;
  #lastError: NodeJS.ErrnoException | undefined;
  #parser: Http1ResponseParser;
  #busy = false;
  #startedAt = 0;
  #closing = false;
  #ready: Promise<void> | null = null;

  constructor(index: number, sink: RequestSink, opts: ClientOptions) {
    this.index = index;
    this.#sink = sink;
    this.#url = opts.url;
    this.#secure = opts.url.protocol === 'https:';
    this.#tls = opts.tls;
    this.#request = http1Request(opts.url, opts.payloadBytes);
    this.#parser = this.#newParser(null);
  }

  get inFlight(): number {
    return this.#busy ? 1 : 0;
  }

  hasRoom(): boolean {
    return !this.#busy && !this.#closing;
  }

  ready(): Promise<void> {
    if (this.#socket === null) this.#open();
    return this.#ready!;
  }

  send(startedAt: number): void {
    this.#busy = true;
    this.#startedAt = startedAt;
    const socket = this.#socket ?? this.#open();
    socket.write(this.#request);
  }

  expire(startedBefore: number): void {
    if (!this.#busy || this.#startedAt >= startedBefore) return;
    this.#busy = false;
    this.#drop();
    this.#sink.done(this, this.#startedAt, 'timeout', true);
  }

  close(): void {
    this.#closing = true;
    this.#drop();
  }

  /** A parser for one socket: answers read from a socket we already dropped are ignored. */
  #newParser(socket: net.Socket | null): Http1ResponseParser {
    return new Http1ResponseParser((status, keepAlive) => {
      if (socket === this.#socket) this.#onResponse(status, keepAlive);
    });
  }

  #open(): net.Socket {
    const port = Number(this.#url.port || (this.#secure ? 443 : 80));
    const socket = this.#secure
      ? tls.connect({ ...tlsOptions(this.#url, this.#tls, ['http/1.1']), port })
      : net.connect({ host: this.#url.hostname, port, noDelay: true });
    if (this.#secure) socket.setNoDelay(true);
    this.#socket = socket;
    this.#connected = false;
    this.#lastError = undefined;
    this.#parser = this.#newParser(socket);
    this.#ready = new Promise((resolve) => {
      socket.once(this.#secure ? 'secureConnect' : 'connect', () => {
        this.#connected = true;
        resolve();
      });
      socket.once('close', () => resolve());
    });
    socket.on('data', (chunk: Buffer) => this.#onData(socket, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.#lastError = err));
    socket.on('close', () => this.#onClose(socket));
    return socket;
  }

  #onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    try {
      this.#parser.feed(chunk);
    } catch (err) {
      if (!(err instanceof Http1ParseError)) throw err;
      this.#fail('protocol');
    }
  }

  #onResponse(status: number, keepAlive: boolean): void {
    if (!this.#busy) {
      // An answer nobody asked for: the connection's framing is lost.
      this.#drop();
      return;
    }
    this.#busy = false;
    if (!keepAlive) this.#drop();
    this.#sink.done(this, this.#startedAt, statusError(status), true);
  }

  #onClose(socket: net.Socket): void {
    if (socket !== this.#socket) return;
    // A body that runs to the close ends here: the parser answers while this is still the current socket,
    // and #onResponse lets the socket go (such an answer is never keep-alive).
    if (this.#busy && this.#parser.end()) return;
    this.#socket = null;
    if (!this.#busy) return;
    this.#busy = false;
    this.#sink.done(this, this.#startedAt, transportError(this.#lastError, this.#connected), false);
  }

  #fail(kind: string): void {
    this.#drop();
    if (!this.#busy) return;
    this.#busy = false;
    this.#sink.done(this, this.#startedAt, kind, false);
  }

  /** Forget the current socket (a later send opens a new one). */
  #drop(): void {
    const socket = this.#socket;
    this.#socket = null;
    socket?.destroy();
  }
}
