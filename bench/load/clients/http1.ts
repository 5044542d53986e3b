// HTTP/1.1 load client over a raw TCP or TLS socket: keep-alive, one request in flight, the request bytes built
// once per connection and written with one call, responses framed by the proxy's own llhttp module (the parser
// node:http uses, reading the socket's handle). No node:http: its per-request objects cost more than the
// proxies under test spend on a request.
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
import { HTTPParser, type LlhttpParser, ParserFeed, releaseParser } from '../../../proxy/llhttp.ts';

/**
 * The request every send writes: GET without a body, or POST with `payloadBytes` of body; with `close`, it asks
 * the server to close the connection after the answer (the next send opens a new one).
 */
export function http1Request(url: URL, payloadBytes: number, close = false): Buffer {
  const path = `${url.pathname}${url.search}` || '/';
  const connection = close ? 'connection: close\r\n' : '';
  const head =
    payloadBytes > 0
      ? `POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: skein-bench\r\n${connection}` +
        `content-type: application/octet-stream\r\ncontent-length: ${payloadBytes}\r\n\r\n`
      : `GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: skein-bench\r\n${connection}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload(payloadBytes)]);
}

export class Http1Connection implements LoadConnection {
  readonly index: number;
  readonly #sink: RequestSink;
  readonly #url: URL;
  readonly #secure: boolean;
  /** Built once: tls.connect options for every (re)connection. */
  readonly #tlsOptions: tls.ConnectionOptions | undefined;
  readonly #request: Buffer;
  #socket: net.Socket | null = null;
  #connected = false;
  #lastError: NodeJS.ErrnoException | undefined;
  #busy = false;
  #startedAt = 0;
  #closing = false;
  #ready: Promise<void> | null = null;

  constructor(index: number, sink: RequestSink, opts: ClientOptions) {
    this.index = index;
    this.#sink = sink;
    this.#url = opts.url;
    this.#secure = opts.url.protocol === 'https:';
    const port = Number(opts.url.port || (this.#secure ? 443 : 80));
    this.#tlsOptions = this.#secure ? { ...tlsOptions(opts.url, opts.tls, ['http/1.1']), port } : undefined;
    this.#request = http1Request(opts.url, opts.payloadBytes, opts.newConnectionPerRequest === true);
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

  #open(): net.Socket {
    const port = Number(this.#url.port || (this.#secure ? 443 : 80));
    const socket = this.#tlsOptions
      ? tls.connect(this.#tlsOptions)
      : net.connect({ host: this.#url.hostname, port, noDelay: true });
    if (this.#secure) socket.setNoDelay(true);
    this.#socket = socket;
    this.#connected = false;
    this.#lastError = undefined;
    // Answers read from a socket already dropped are ignored.
    const reader = new ResponseReader(socket, (status, keepAlive) => {
      if (socket === this.#socket) this.#onResponse(status, keepAlive);
    });
    this.#ready = new Promise((resolve) => {
      socket.once(this.#secure ? 'secureConnect' : 'connect', () => {
        this.#connected = true;
        reader.start(() => {
          if (socket === this.#socket) this.#fail('protocol');
        });
        resolve();
      });
      socket.once('close', () => resolve());
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (this.#lastError = err));
    socket.on('close', () => {
      this.#onClose(socket, reader);
      reader.stop();
    });
    return socket;
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

  #onClose(socket: net.Socket, reader: ResponseReader): void {
    if (socket !== this.#socket) return;
    // A body that runs to the close ends here: the parser answers while this is still the current socket,
    // and #onResponse lets the socket go (such an answer is never keep-alive).
    if (this.#busy && reader.end()) return;
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

/** Reads one socket's responses with llhttp and reports each final one (interim 1xx answers are skipped). */
class ResponseReader {
  readonly #feed: ParserFeed;
  readonly #parser: LlhttpParser;
  readonly #onResponse: (status: number, keepAlive: boolean) => void;
  #status = 0;
  #keepAlive = true;
  #interim = false;
  #attached = false;
  #stopped = false;

  constructor(socket: net.Socket, onResponse: (status: number, keepAlive: boolean) => void) {
    this.#feed = new ParserFeed(socket);
    this.#onResponse = onResponse;
    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {}, 64 * 1024, 0);
    p[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      _minor: number,
      _headers: unknown,
      _method: unknown,
      _url: unknown,
      status: number,
      _text: unknown,
      _upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      this.#interim = status < 200 && status !== 101;
      this.#status = status;
      this.#keepAlive = keepAlive;
      return 0;
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      if (this.#interim) this.#interim = false;
      else this.#onResponse(this.#status, this.#keepAlive);
    };
    this.#parser = p;
  }

  /** Starts reading (once connected); `onError` is called when the bytes are not HTTP/1.x responses. */
  start(onError: () => void): void {
    this.#attached = true;
    const rest = this.#feed.attach(
      this.#parser,
      (ret) => {
        if (typeof ret !== 'number') onError();
      },
      null,
    );
    if (rest !== null && typeof this.#parser.execute(rest) !== 'number') onError();
  }

  /** The connection closed: completes a response whose body runs to the close; true if there was one. */
  end(): boolean {
    let completed = false;
    const report = this.#onResponse;
    const p = this.#parser;
    p[HTTPParser.kOnMessageComplete] = () => {
      completed = true;
      report(this.#status, false);
    };
    p.finish();
    return completed;
  }

  /** Frees the parser (the socket closed). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#attached) this.#feed.detach(false);
    else releaseParser(this.#parser);
  }
}
