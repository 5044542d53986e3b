// HTTP/2 (h2c) upstream pool: one multiplexed session per endpoint, reopened when it closes or receives GOAWAY.
// Used for h2 and gRPC downstreams by default and for any cluster declared `protocol: http2`. Streams are
// cancelled with RST_STREAM(CANCEL) when the downstream goes away, and an upstream reset is passed back.
// A new session's first requests wait for the peer's SETTINGS: an endpoint that does not speak HTTP/2 answers
// the preface with something else or closes, no stream was ever opened, and `protocol: auto` requests are
// handed to the endpoint's HTTP/1.1 pool untouched (their bodies not yet read).
import http2 from 'node:http2';
import type { ClusterLimits, SlotWaiter } from '../../src/resilience/cluster-limits.ts';
import { type ErrorSource, ForwardError, UpstreamError } from '../flags.ts';
import { connectUpstream } from '../mtls/upstream.ts';
import { pendingOverflow, SlotWait, type WaitQueue } from './slot-wait.ts';

/** ALPN under mTLS. */
const H2_ALPN = ['h2'];
import {
  type EndpointPool,
  type Exchange,
  type FlatHeaders,
  NO_EXCHANGE,
  type OutboundRequest,
  type PoolOptions,
  type ResponseSink,
} from './types.ts';

/** Where requests go when the endpoint refuses HTTP/2 (the Endpoint, which knows its HTTP/1.1 pool). */
export interface Http2Refusal {
  /** Once per refused session: the endpoint answered the h2c preface with something that is not HTTP/2. */
  refusedHttp2(reason: string): void;
  /** A request with `http1Fallback`, sent again over HTTP/1.1. */
  requestOverHttp1(req: OutboundRequest, sink: ResponseSink): Exchange;
}

/** A request waiting for its session's SETTINGS; it then becomes a stream, or goes over HTTP/1.1. */
class PendingRequest implements Exchange {
  readonly req: OutboundRequest;
  readonly sink: ResponseSink;
  inner: Exchange | null = null;
  aborted = false;

  constructor(req: OutboundRequest, sink: ResponseSink) {
    this.req = req;
    this.sink = sink;
  }

  abort(): void {
    this.aborted = true;
    this.inner?.abort();
  }

  resume(): void {
    this.inner?.resume();
  }
}

/** Sessions that completed their connection; a stream error on any other one is a connect failure (UF). */
const connectedSessions = new WeakSet<http2.ClientHttp2Session>();

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** h2 header object → flat list without pseudo-headers. */
export function h2HeadersToFlat(headers: http2.IncomingHttpHeaders): FlatHeaders {
  const out: FlatHeaders = [];
  for (const k in headers) {
    if (k.charCodeAt(0) === 58 /* : */) continue;
    const v = headers[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(k, x);
    else out.push(k, v);
  }
  return out;
}

class H2Exchange implements Exchange {
  private readonly stream: http2.ClientHttp2Stream;
  private sink: ResponseSink | null;
  private trailers: FlatHeaders | null = null;
  private timer: NodeJS.Timeout | null = null;
  private responded = false;

  constructor(
    session: http2.ClientHttp2Session,
    stream: http2.ClientHttp2Stream,
    req: OutboundRequest,
    sink: ResponseSink,
  ) {
    this.stream = stream;
    this.sink = sink;
    // The exception boundary: each sink call is in a try (one per callback), so a throw while forwarding
    // the answer fails this request alone instead of escaping the session's event and ending the process.
    stream.on('response', (headers, flags) => {
      this.responded = true;
      const sink = this.sink;
      if (sink === null) return;
      const status = Number(headers[':status']);
      if (!(status >= 200 && status <= 599)) {
        this.fail('UPE', 'protocol', `invalid upstream response: status ${headers[':status']}`);
        return;
      }
      try {
        sink.onResponse(status, h2HeadersToFlat(headers), (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
      } catch (err) {
        this.sinkThrew(sink, err);
      }
    });
    stream.on('data', (chunk: Buffer) => {
      const sink = this.sink;
      if (sink === null) return;
      try {
        if (!sink.onData(chunk)) stream.pause();
      } catch (err) {
        this.sinkThrew(sink, err);
      }
    });
    stream.on('trailers', (headers) => {
      this.trailers = h2HeadersToFlat(headers);
    });
    // node ends the readable side on a peer's RST_STREAM(CANCEL) as well, without an 'error' and with
    // rstCode already set: that is a reset (a truncated response), not the end of the response.
    stream.on('end', () => (stream.rstCode ? this.reset(stream.rstCode) : this.finish()));
    stream.on('error', (err) => {
      // A peer's RST_STREAM(REFUSED_STREAM) arrives here before 'close': the upstream did not process it.
      if (stream.rstCode === NGHTTP2_REFUSED_STREAM) this.reset(stream.rstCode);
      else if (connectedSessions.has(session)) {
        this.fail('UC', 'upstream-reset', err.message, err, stream.rstCode === undefined ? null : stream.rstCode);
      } else this.fail('UF', 'connect', err.message, err);
    });
    stream.on('close', () => {
      if (this.sink === null) return;
      if (stream.rstCode) this.reset(stream.rstCode);
      else this.finish();
    });
    if (req.timeoutMs > 0) {
      this.timer = setTimeout(
        () => this.fail('UT', 'timeout', `upstream request timeout after ${req.timeoutMs} ms`),
        req.timeoutMs,
      );
      this.timer.unref();
    }
    if (req.body !== null) req.body.pipe(stream);
  }

  private finish(): void {
    const sink = this.sink;
    if (sink === null) return;
    this.sink = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.responded) {
      sink.onError(new UpstreamError('UPE', 'protocol', 'upstream stream ended without a response', true));
    } else {
      try {
        sink.onEnd(this.trailers, null);
      } catch (err) {
        this.sinkThrew(sink, err);
      }
    }
  }

  /** A sink callback threw: the stream is cancelled and the sink told (UPE). */
  private sinkThrew(sink: ResponseSink, err: unknown): void {
    this.sink = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
    sink.onError(new ForwardError(err));
  }

  private reset(code: number): void {
    // REFUSED_STREAM: the upstream did not process the request, as for a connect failure.
    if (code === NGHTTP2_REFUSED_STREAM)
      this.fail('UF', 'connect', `upstream reset the stream (code ${code})`, undefined, code);
    else this.fail('UC', 'upstream-reset', `upstream reset the stream (code ${code})`, undefined, code);
  }

  private fail(
    flag: 'UF' | 'UC' | 'UT' | 'UPE',
    source: ErrorSource,
    message: string,
    cause?: unknown,
    http2Code: number | null = null,
  ): void {
    const sink = this.sink;
    if (sink === null) return;
    this.sink = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
    sink.onError(new UpstreamError(flag, source, message, flag !== 'UF', cause, http2Code));
  }

  abort(): void {
    this.sink = null;
    if (this.timer !== null) clearTimeout(this.timer);
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
  }

  resume(): void {
    this.stream.resume();
  }
}

/** A session counts as one connection against the cluster's maxConnections; its streams count as requests. */
export class H2Pool implements EndpointPool, SlotWaiter, WaitQueue {
  private readonly opts: PoolOptions;
  private readonly limits: ClusterLimits | null;
  /** Requests waiting for a session slot (the cluster at maxConnections), oldest first. */
  private readonly waiters: SlotWait[] = [];
  private readonly authority: string;
  /** The same endpoint as an https: origin, for sessions over mTLS. */
  private readonly secureAuthority: string;
  private readonly refusal: Http2Refusal | null;
  private session: http2.ClientHttp2Session | null = null;
  /** The current session has received the peer's SETTINGS: it speaks HTTP/2, requests open streams at once. */
  private sessionReady = false;
  /** Requests waiting for the current session's SETTINGS. */
  private pending: PendingRequest[] = [];
  private closed = false;

  constructor(opts: PoolOptions, refusal: Http2Refusal | null = null) {
    this.opts = opts;
    this.refusal = refusal;
    this.limits = opts.limits ?? null;
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    this.authority = `http://${host}:${opts.port}`;
    this.secureAuthority = `https://${host}:${opts.port}`;
  }

  get connectionCount(): number {
    return this.session !== null && !this.session.destroyed ? 1 : 0;
  }

  private liveSession(): http2.ClientHttp2Session | null {
    const s = this.session;
    return s !== null && !s.closed && !s.destroyed ? s : null;
  }

  /** A new session; its connection slot is already counted (and given back when it closes). */
  private connect(): http2.ClientHttp2Session {
    const mtls = this.opts.mtls ?? null;
    const session =
      mtls === null
        ? http2.connect(this.authority, { peerMaxConcurrentStreams: 1000 })
        : http2.connect(this.secureAuthority, {
            peerMaxConcurrentStreams: 1000,
            // The session starts once the server is verified (mtls/upstream.ts): a refused one gets no preface.
            // (http2 itself starts the session on 'secureConnect', after the check's listener has run.)
            createConnection: () =>
              connectUpstream({ host: this.opts.host, port: this.opts.port, mtls, alpn: H2_ALPN }, () => {}),
          });
    const pending: PendingRequest[] = [];
    let connected = false;
    let ready = false;
    let timedOut = false;
    let failure = '';
    // Covers the TCP connect and the peer's SETTINGS: a server that accepts and then says nothing is a
    // connect failure, not a refusal of HTTP/2.
    const connectTimer = setTimeout(() => {
      if (ready) return;
      timedOut = true;
      const what = connected ? 'no HTTP/2 SETTINGS from the upstream' : 'connect timeout';
      session.destroy(new Error(`${what} after ${this.opts.connectTimeoutMs} ms`));
    }, this.opts.connectTimeoutMs);
    connectTimer.unref();
    session.on('connect', () => {
      connected = true;
      this.opts.onConnection?.(1);
      connectedSessions.add(session);
      session.setTimeout(this.opts.idleTimeoutMs, () => {
        // Idle: no streams open for idleTimeoutMs (before SETTINGS, the connect timer decides).
        if (ready) session.close();
      });
    });
    session.once('remoteSettings', () => {
      if (session.closed) return; // closed by us meanwhile: 'close' settles what waits
      ready = true;
      clearTimeout(connectTimer);
      if (this.session === session) this.sessionReady = true;
      for (const p of pending) {
        if (p.aborted) continue;
        // Deferred past the pipeline's try: a request nghttp2 refuses to send fails alone, as it would there.
        try {
          p.inner = this.openStream(session, p.req, p.sink);
        } catch (err) {
          p.sink.onError(new ForwardError(err, 'IE'));
        }
      }
      pending.length = 0;
    });
    session.on('error', (err) => {
      // Streams on it get their own error/close; the next request opens a new session.
      if (failure === '') failure = err.message;
    });
    session.once('close', () => {
      if (connected) this.opts.onConnection?.(-1);
      this.limits?.connectionClosed();
      // Our own close (the endpoint left the cluster) says nothing about what the endpoint speaks.
      if (!ready)
        this.settle(pending, connected && !timedOut && !this.closed, failure || 'upstream closed the connection');
    });
    const forget = () => {
      clearTimeout(connectTimer);
      if (this.session === session) this.session = null;
    };
    session.on('goaway', forget);
    session.on('close', forget);
    session.unref();
    this.session = session;
    this.sessionReady = false;
    this.pending = pending;
    return session;
  }

  /**
   * A session closed before its SETTINGS arrived: no stream was opened, so nothing was processed. Connected
   * means the endpoint heard the preface and refused it: `http1Fallback` requests go over HTTP/1.1, others
   * (gRPC, `protocol: http2`) get an error that says so. Not connected: a connect failure for all.
   */
  private settle(pending: PendingRequest[], refused: boolean, reason: string): void {
    const refusal = refused ? this.refusal : null;
    if (refusal !== null) refusal.refusedHttp2(reason);
    for (const p of pending) {
      if (p.aborted) continue;
      if (refusal !== null && p.req.http1Fallback) {
        p.inner = refusal.requestOverHttp1(p.req, p.sink);
        continue;
      }
      const message = refused ? `upstream does not speak HTTP/2 (it refused the h2c preface: ${reason})` : reason;
      p.sink.onError(
        refused
          ? new UpstreamError('UC', 'protocol', message, false)
          : new UpstreamError('UF', 'connect', message, false),
      );
    }
    pending.length = 0;
  }

  request(req: OutboundRequest, sink: ResponseSink): Exchange {
    let session = this.liveSession();
    if (session === null) {
      const limits = this.limits;
      if (limits !== null && !limits.tryOpenConnection()) {
        if (!limits.tryWait(this)) {
          sink.onError(pendingOverflow());
          return NO_EXCHANGE;
        }
        const w = new SlotWait(this, req, sink);
        this.waiters.push(w);
        return w;
      }
      session = this.connect();
    }
    return this.send(session, req, sink);
  }

  private send(session: http2.ClientHttp2Session, req: OutboundRequest, sink: ResponseSink): Exchange {
    if (this.sessionReady) return this.openStream(session, req, sink);
    // Not read until a stream (or the HTTP/1.1 fallback) takes it: both resume it.
    req.body?.pause();
    const p = new PendingRequest(req, sink);
    this.pending.push(p);
    return p;
  }

  private openStream(session: http2.ClientHttp2Session, req: OutboundRequest, sink: ResponseSink): Exchange {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': req.method,
      ':path': req.path,
      ':authority': req.authority,
      ':scheme': req.scheme,
    };
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) {
      const k = h[i].toLowerCase();
      const prev = headers[k];
      if (prev === undefined) headers[k] = h[i + 1];
      else if (Array.isArray(prev)) prev.push(h[i + 1]);
      else headers[k] = [String(prev), h[i + 1]];
    }
    if (req.contentLength > 0) headers['content-length'] = String(req.contentLength);
    const stream = session.request(headers, { endStream: req.body === null });
    return new H2Exchange(session, stream, req, sink);
  }

  /** WaitQueue: a waiter timed out or was aborted. */
  dropWaiter(w: SlotWait): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    w.served();
    this.limits?.stopWaiting(this);
    return true;
  }

  /** SlotWaiter: a slot freed (already counted): a session for the oldest waiter, shared by all waiting here. */
  takeSlot(): void {
    const first = this.waiters.shift(); // the cluster took its place in the queue
    if (first === undefined) {
      this.limits?.connectionClosed(); // nobody left to use it: give it back
      return;
    }
    let session = this.liveSession();
    const spare = session !== null;
    if (session === null) session = this.connect();
    this.dispatch(session, first);
    while (this.waiters.length > 0) {
      const next = this.waiters.shift()!;
      this.limits?.stopWaiting(this);
      this.dispatch(session, next);
    }
    if (spare) this.limits?.connectionClosed(); // a session was opened meanwhile: the slot goes on
  }

  private dispatch(session: http2.ClientHttp2Session, w: SlotWait): void {
    w.served();
    try {
      w.inner = this.send(session, w.req, w.sink);
    } catch (err) {
      w.sink.onError(new ForwardError(err, 'IE'));
    }
  }

  /** SlotWaiter: sessions are shared by every request, so none is given up for another endpoint. */
  closeIdle(): boolean {
    return false;
  }

  close(): void {
    this.closed = true;
    this.limits?.removePool(this);
    this.session?.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
