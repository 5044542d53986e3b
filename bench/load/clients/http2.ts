// HTTP/2 load client on node:http2 (h2c, or h2 over TLS by ALPN), also carrying gRPC calls framed by hand:
// one session per connection, many streams in flight on it. A plain request succeeds on a 1xx–3xx status; a
// gRPC call needs HTTP 200 and grpc-status 0 (from the trailers, or the headers of a trailers-only answer).
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import {
  type ClientOptions,
  type ErrorKind,
  type LoadConnection,
  type RequestSink,
  payload,
  statusError,
  tlsOptions,
  transportError,
} from './connection.ts';
import {
  frameEchoMessage,
  GrpcFrameReader,
  grpcErrorKind,
  SERVER_STREAM_PATH,
  STREAM_MESSAGES_HEADER,
  UNARY_PATH,
} from './grpc-frame.ts';

export type H2Flavour = 'http2' | 'grpc-unary' | 'grpc-server-stream';

/** Streams in flight per connection when neither the spec nor the server's SETTINGS say fewer. */
const MAX_STREAMS = 1000;

interface Call {
  readonly startedAt: number;
  readonly stream: ClientHttp2Stream;
  readonly session: ClientHttp2Session;
  status: number;
  grpcStatus: string | undefined;
  messages: number;
  ended: boolean;
  settled: boolean;
  /** The answer could not be read as gRPC frames. */
  garbled: boolean;
  /** Why the stream failed, when it did (a cancelled stream carries its session's error as the cause). */
  error: NodeJS.ErrnoException | undefined;
}

function requestHeaders(url: URL, flavour: H2Flavour, opts: ClientOptions): OutgoingHttpHeaders {
  if (flavour === 'http2') {
    const path = `${url.pathname}${url.search}` || '/';
    return opts.payloadBytes > 0
      ? { ':method': 'POST', ':path': path, 'content-type': 'application/octet-stream' }
      : { ':method': 'GET', ':path': path };
  }
  const headers: OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': flavour === 'grpc-unary' ? UNARY_PATH : SERVER_STREAM_PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
  };
  if (flavour === 'grpc-server-stream') headers[STREAM_MESSAGES_HEADER] = String(opts.streamMessages);
  return headers;
}

export class Http2Connection implements LoadConnection {
  readonly index: number;
  readonly #sink: RequestSink;
  readonly #url: URL;
  readonly #opts: ClientOptions;
  readonly #grpc: boolean;
  readonly #headers: OutgoingHttpHeaders;
  /** Request body: the payload (plain POST), a framed EchoMessage (gRPC), or none (GET). */
  readonly #body: Buffer | null;
  readonly #maxStreams: number;
  readonly #calls = new Set<Call>();
  readonly #connected = new WeakSet<ClientHttp2Session>();
  readonly #sessionErrors = new WeakMap<ClientHttp2Session, NodeJS.ErrnoException>();
  #session: ClientHttp2Session | null = null;
  #ready: Promise<void> | null = null;
  #closing = false;

  constructor(index: number, sink: RequestSink, opts: ClientOptions, flavour: H2Flavour) {
    this.index = index;
    this.#sink = sink;
    this.#url = opts.url;
    this.#opts = opts;
    this.#grpc = flavour !== 'http2';
    this.#headers = requestHeaders(opts.url, flavour, opts);
    if (this.#grpc) this.#body = frameEchoMessage(payload(opts.payloadBytes));
    else this.#body = opts.payloadBytes > 0 ? payload(opts.payloadBytes) : null;
    this.#maxStreams = Math.min(opts.streamsPerConnection, MAX_STREAMS);
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  hasRoom(): boolean {
    if (this.#closing) return false;
    const peerLimit = this.#session?.remoteSettings?.maxConcurrentStreams ?? MAX_STREAMS;
    return this.#calls.size < Math.min(this.#maxStreams, peerLimit);
  }

  ready(): Promise<void> {
    if (this.#session === null) this.#open();
    return this.#ready!;
  }

  send(startedAt: number): void {
    const session = this.#session ?? this.#open();
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(this.#headers, { endStream: this.#body === null });
    } catch {
      // The session went away between the check and the request (GOAWAY, destroyed): fail this one, reopen later.
      if (this.#session === session) this.#session = null;
      const kind = this.#failure(session);
      queueMicrotask(() => this.#sink.done(this, startedAt, kind, false));
      return;
    }
    const call: Call = {
      startedAt,
      stream,
      session,
      status: 0,
      grpcStatus: undefined,
      messages: 0,
      ended: false,
      settled: false,
      garbled: false,
      error: undefined,
    };
    this.#calls.add(call);
    stream.on('response', (headers) => {
      call.status = Number(headers[':status']);
      const grpcStatus = headers['grpc-status'];
      if (typeof grpcStatus === 'string') call.grpcStatus = grpcStatus;
    });
    if (this.#grpc) {
      const reader = new GrpcFrameReader(() => call.messages++);
      stream.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk);
        } catch {
          call.garbled = true;
          stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
        }
      });
      stream.on('trailers', (trailers) => {
        const grpcStatus = trailers['grpc-status'];
        if (typeof grpcStatus === 'string') call.grpcStatus = grpcStatus;
      });
    } else {
      stream.resume();
    }
    stream.on('end', () => (call.ended = true));
    stream.on('error', (err: NodeJS.ErrnoException) => {
      call.error = (err.cause as NodeJS.ErrnoException | undefined) ?? err;
    }); // judged on 'close' below
    stream.on('close', () => this.#onClose(call));
    if (this.#body !== null) stream.end(this.#body);
  }

  expire(startedBefore: number): void {
    for (const call of this.#calls) {
      if (call.startedAt >= startedBefore) continue;
      this.#settle(call);
      call.stream.close(http2.constants.NGHTTP2_CANCEL);
      this.#sink.done(this, call.startedAt, 'timeout', true);
    }
  }

  close(): void {
    this.#closing = true;
    const session = this.#session;
    this.#session = null;
    session?.destroy();
  }

  #open(): ClientHttp2Session {
    const origin = `${this.#url.protocol}//${this.#url.host}`;
    const options: http2.SecureClientSessionOptions = {
      settings: { enablePush: false },
      maxSessionMemory: 64,
    };
    const session =
      this.#url.protocol === 'https:'
        ? http2.connect(origin, { ...options, ...tlsOptions(this.#url, this.#opts.tls, ['h2']) })
        : http2.connect(origin, options);
    this.#session = session;
    this.#ready = new Promise((resolve) => {
      session.once('connect', () => {
        this.#connected.add(session);
        resolve();
      });
      session.once('close', () => resolve());
    });
    // Each stream on a failed session fails and is counted; the session's error says how.
    session.on('error', (err: NodeJS.ErrnoException) => this.#sessionErrors.set(session, err));
    session.on('goaway', () => this.#forget(session));
    session.on('close', () => this.#forget(session));
    return session;
  }

  #forget(session: ClientHttp2Session): void {
    if (this.#session === session) this.#session = null;
  }

  #onClose(call: Call): void {
    if (call.settled) return;
    this.#settle(call);
    if (call.messages > 0) this.#sink.messages(call.messages);
    if (call.garbled) {
      this.#sink.done(this, call.startedAt, 'protocol', true);
    } else if (call.ended && call.status > 0) {
      this.#sink.done(this, call.startedAt, this.#outcome(call), true);
    } else {
      this.#sink.done(this, call.startedAt, this.#failure(call.session, call.error), false);
    }
  }

  #failure(session: ClientHttp2Session, streamError?: NodeJS.ErrnoException): ErrorKind {
    return transportError(streamError ?? this.#sessionErrors.get(session), this.#connected.has(session));
  }

  #outcome(call: Call): ErrorKind | undefined {
    const httpError = statusError(call.status);
    if (!this.#grpc || httpError !== undefined) return httpError;
    if (call.grpcStatus === undefined) return grpcErrorKind(2); // no status at all: UNKNOWN, as grpc-js says
    const code = Number(call.grpcStatus);
    return code === 0 ? undefined : grpcErrorKind(code);
  }

  #settle(call: Call): void {
    call.settled = true;
    this.#calls.delete(call);
  }
}
