// WebSocket load client on the `ws` package: one socket per connection, one message in flight; a request is
// one echo round trip (send a binary message of payloadBytes, wait for the next message back).
import WebSocket from 'ws';
import {
  type ClientOptions,
  type LoadConnection,
  type RequestSink,
  payload,
  statusError,
  tlsOptions,
  transportError,
} from './connection.ts';

export class WebSocketConnection implements LoadConnection {
  readonly index: number;
  readonly #sink: RequestSink;
  readonly #opts: ClientOptions;
  readonly #message: Buffer;
  #ws: WebSocket | null = null;
  #open = false;
  #ready: Promise<void> | null = null;
  #lastError: NodeJS.ErrnoException | undefined;
  #busy = false;
  #startedAt = 0;
  #closing = false;

  constructor(index: number, sink: RequestSink, opts: ClientOptions) {
    this.index = index;
    this.#sink = sink;
    this.#opts = opts;
    this.#message = payload(opts.payloadBytes);
  }

  get inFlight(): number {
    return this.#busy ? 1 : 0;
  }

  hasRoom(): boolean {
    return !this.#busy && !this.#closing;
  }

  ready(): Promise<void> {
    if (this.#ws === null) this.#connect();
    return this.#ready!;
  }

  send(startedAt: number): void {
    this.#busy = true;
    this.#startedAt = startedAt;
    const ws = this.#ws ?? this.#connect();
    if (this.#open) ws.send(this.#message, { binary: true });
    // else: sent on 'open'
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

  #connect(): WebSocket {
    const url = this.#opts.url;
    const secure = url.protocol === 'wss:';
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      ...(secure ? tlsOptions(url, this.#opts.tls, ['http/1.1']) : {}),
    });
    this.#ws = ws;
    this.#open = false;
    this.#lastError = undefined;
    this.#ready = new Promise((resolve) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', () => resolve());
      ws.once('close', () => resolve());
    });
    ws.on('open', () => {
      if (ws !== this.#ws) return;
      this.#open = true;
      if (this.#busy) ws.send(this.#message, { binary: true });
    });
    ws.on('message', () => this.#onMessage(ws));
    ws.on('unexpected-response', (req, res) => {
      // The handshake was refused with a status: that status is the request's outcome.
      res.resume();
      req.destroy();
      if (ws !== this.#ws) return;
      this.#ws = null;
      if (!this.#busy) return;
      this.#busy = false;
      this.#sink.done(this, this.#startedAt, statusError(res.statusCode ?? 0) ?? 'connect', true);
    });
    ws.on('error', (err: NodeJS.ErrnoException) => (this.#lastError = err)); // judged on 'close'
    ws.on('close', () => this.#onClose(ws));
    return ws;
  }

  #onMessage(ws: WebSocket): void {
    if (ws !== this.#ws || !this.#busy) return;
    this.#busy = false;
    this.#sink.done(this, this.#startedAt, undefined, true);
  }

  #onClose(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    const wasOpen = this.#open;
    this.#ws = null;
    this.#open = false;
    if (!this.#busy) return;
    this.#busy = false;
    this.#sink.done(this, this.#startedAt, transportError(this.#lastError, wasOpen), false);
  }

  #drop(): void {
    const ws = this.#ws;
    this.#ws = null;
    this.#open = false;
    ws?.terminate();
  }
}
