// HTTP/1.1 upstream pool: keep-alive connections to one endpoint, one request at a time per connection.
// Chosen over undici by measurement (see README "Design numbers"): it writes the request head as one string,
// parses responses with Node's own llhttp binding and hands raw header lists to the sink, which roughly
// halved the per-request CPU and RSS against undici's request API on this machine. The parser consumes the
// socket's handle once connected (no JS Buffer and 'data' event per read), as the downstream does.
// The keep-alive close race (an upstream closes an idle connection just as a request goes out on it) is
// handled here, below the sink: such a request is sent once more on a fresh connection (see retryable()),
// its body taken again from the request's kept body when it has one, else from a copy the pool keeps.
import type net from 'node:net';
import type { ClusterLimits, SlotWaiter } from '../../src/resilience/cluster-limits.ts';
import { type ErrorSource, ForwardError, UpstreamError } from '../flags.ts';
import { stripHopByHop } from '../headers.ts';
import { HTTPParser, type LlhttpParser, ParserFeed, releaseParser } from '../llhttp.ts';
import { connectUpstream } from '../mtls/upstream.ts';
import { pendingOverflow, SlotWait, type WaitQueue } from './slot-wait.ts';
import {
  type EndpointPool,
  type Exchange,
  type FlatHeaders,
  NO_EXCHANGE,
  type OutboundRequest,
  type PoolOptions,
  type ResponseSink,
} from './types.ts';

const CRLF = '\r\n';
/** ALPN under mTLS: this pool speaks HTTP/1.1. */
const HTTP1_ALPN = ['http/1.1'];
/** The one reason the response is not read: the sink (downstream) is behind. */
const PAUSE_SINK = 1;
const CHUNK_END = Buffer.from('0\r\n\r\n');

/** Methods RFC 9110 calls idempotent: their body, when small, is kept to be sent again after the keep-alive race. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Body bytes kept per request for that; a larger body is not kept, and its request not re-sent once read. */
const REPLAY_LIMIT_BYTES = 64 * 1024;

/** One keep-alive connection. It is its own Exchange while a request is on it (no per-request object). */
class H1Connection implements Exchange {
  readonly socket: net.Socket;
  private readonly parser: LlhttpParser;
  private readonly pool: H1Pool;
  /** Feeds the socket's reads to the parser from 'connect' on; paused while the sink is behind. */
  private readonly feed: ParserFeed;
  private connected = false;
  private sink: ResponseSink | null = null;
  /** The request in flight (kept for a re-send after the keep-alive close race). */
  private req: OutboundRequest | null = null;
  /** Requests started on this connection: from the second on, the connection was reused. */
  private requests = 0;
  /** Bytes of the current response (even an incomplete head) have arrived. */
  private responseSeen = false;
  /** A byte of the current request's body was taken from its stream. */
  private bodyRead = false;
  /** An idempotent request's body chunks sent on a reused connection, to replay them; null: none kept. */
  private replay: Buffer[] | null = null;
  private replayBytes = 0;
  private detachBody: (() => void) | null = null;
  /** The connection the request moved to after the keep-alive close race: abort and resume go there. */
  private successor: H1Connection | null = null;
  /** The idle timer fired while a request was on the connection; it is re-armed when the request ends. */
  private idleTimerSpent = false;
  private readonly idleTimeoutMs: number;
  private skipBody = false;
  /** The request body has been written completely (reuse is only safe then). */
  private requestDone = true;
  private keepAlive = false;
  private interim = false;
  private pendingHeaders: FlatHeaders | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;
  private deadlineAt = 0;

  constructor(pool: H1Pool, opts: PoolOptions) {
    this.pool = pool;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.parser = new HTTPParser();
    this.parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
    this.parser[HTTPParser.kOnHeaders] = this.onHeaders;
    this.parser[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    this.parser[HTTPParser.kOnBody] = this.onBody;
    this.parser[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    const socket = connectUpstream(
      { host: opts.host, port: opts.port, mtls: opts.mtls ?? null, alpn: HTTP1_ALPN },
      () => {
        this.connected = true;
        // Reads no longer pass through net.Socket, so they do not refresh this timer: an idle connection
        // expires idleTimeoutMs after its last request was written.
        socket.setTimeout(opts.idleTimeoutMs);
        opts.onConnection?.(1);
        this.feed.attach(this.parser, this.afterExecute, null);
      },
    );
    this.socket = socket;
    this.feed = new ParserFeed(socket);
    socket.setTimeout(opts.connectTimeoutMs);
    socket.on('end', () => {
      // A response delimited by connection close ends here.
      if (this.sink !== null) this.parser.finish();
    });
    socket.on('timeout', () => {
      if (!this.connected) this.fail('UF', 'connect', `connect timeout after ${opts.connectTimeoutMs} ms`);
      else if (this.sink !== null) this.idleTimerSpent = true;
      else socket.destroy(); // idle keep-alive connection expired
    });
    socket.on('error', (err) =>
      this.connected
        ? this.fail('UC', 'upstream-reset', err.message, err)
        : this.fail('UF', 'connect', err.message, err),
    );
    socket.on('close', () => {
      if (this.connected) opts.onConnection?.(-1);
      if (this.timer !== null) clearTimeout(this.timer);
      this.pool.forget(this);
      if (this.sink !== null) {
        if (this.connected) this.fail('UC', 'upstream-reset', 'upstream closed the connection');
        else this.fail('UF', 'connect', 'upstream closed the connection');
      }
      // A connection that never connected never attached its parser: release it here, or it lives forever.
      if (this.connected) this.feed.detach(false);
      else releaseParser(this.parser);
    });
  }

  private readonly afterExecute = (r: number | Error): void => {
    this.responseSeen = true;
    if (typeof r !== 'number') this.fail('UPE', 'protocol', `invalid upstream response: ${r.message}`);
    else this.flushHeld();
  };

  /** Downstream backpressure: stop reading the response until the sink drains. */
  private pauseReading(): void {
    this.feed.pause(PAUSE_SINK);
  }

  private resumeReading(): void {
    this.feed.resume(PAUSE_SINK);
  }

  get busy(): boolean {
    return this.sink !== null;
  }

  /**
   * `replay`: body chunks a failed attempt had sent (the keep-alive close race), to be sent first; `body`: the
   * body to send instead of req.body (the race again, the body had anew from req.keptBody).
   */
  start(req: OutboundRequest, sink: ResponseSink, replay: Buffer[] | null = null, body = req.body): void {
    this.sink = sink;
    this.req = req;
    this.requests++;
    this.responseSeen = false;
    this.bodyRead = false;
    this.replay = null;
    this.skipBody = req.method === 'HEAD';
    this.keepAlive = false;
    this.interim = false;
    this.pendingHeaders = null;
    let head = `${req.method} ${req.path} HTTP/1.1${CRLF}host: ${req.authority}${CRLF}`;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}${CRLF}`;
    if (body === null) {
      this.requestDone = true;
      this.socket.write(head + CRLF, 'latin1');
    } else {
      this.requestDone = false;
      head +=
        req.contentLength >= 0
          ? `content-length: ${req.contentLength}${CRLF}${CRLF}`
          : `transfer-encoding: chunked${CRLF}${CRLF}`;
      this.socket.write(head, 'latin1');
      // Only on a reused connection can the keep-alive close race happen; a kept body needs no copy here.
      if (this.requests > 1 && IDEMPOTENT.has(req.method) && req.keptBody === null) {
        this.replay = [];
        this.replayBytes = 0;
      }
      this.streamBody(body, req.contentLength < 0, replay);
    }
    if (req.timeoutMs > 0) this.armTimer(req.timeoutMs);
  }

  private streamBody(body: NonNullable<OutboundRequest['body']>, chunked: boolean, replay: Buffer[] | null): void {
    const socket = this.socket;
    const send = (chunk: Buffer): boolean => {
      if (!chunked) return socket.write(chunk);
      // All three writes, whatever the first two return: a false is backpressure, not a reason to drop
      // the chunk (that would break the framing).
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      return socket.write(CRLF);
    };
    if (replay !== null) for (const chunk of replay) send(chunk);
    if (body.readableEnded) {
      // A re-send whose failed attempt had read the whole body (sent above, or empty): no 'end' will come.
      if (chunked) socket.write(CHUNK_END);
      this.requestDone = true;
      return;
    }
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      this.bodyRead = true;
      const kept = this.replay;
      if (kept !== null) {
        this.replayBytes += chunk.length;
        if (this.replayBytes <= REPLAY_LIMIT_BYTES) kept.push(chunk);
        else this.replay = null;
      }
      const ok = send(chunk);
      if (!ok) {
        body.pause();
        socket.once('drain', () => body.resume());
      }
    };
    const onEnd = () => {
      if (chunked) socket.write(CHUNK_END);
      this.requestDone = true;
      cleanup();
    };
    const onError = () => cleanup();
    const cleanup = () => {
      this.detachBody = null;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    this.detachBody = cleanup;
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onError);
    // A body an HTTP/2 pool paused while it waited for SETTINGS (an endpoint that refused HTTP/2).
    if (body.isPaused()) body.resume();
  }

  /** One timer per connection, re-armed per request: no timer allocation on the hot path. */
  private armTimer(ms: number): void {
    this.deadlineAt = performance.now() + ms;
    if (this.timer !== null && this.timerMs === ms) {
      this.timer.refresh();
      return;
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    if (this.sink === null || performance.now() < this.deadlineAt - 1) return;
    this.fail('UT', 'timeout', `upstream request timeout after ${this.timerMs} ms`);
  };

  private readonly onHeaders = (headers: string[]): void => {
    if (this.pendingHeaders === null) this.pendingHeaders = headers;
    else for (const x of headers) this.pendingHeaders.push(x);
  };

  private readonly onHeadersComplete = (
    _major: number,
    _minor: number,
    headers: string[] | undefined,
    _method: unknown,
    _url: unknown,
    status: number,
    _statusMessage: string,
    _upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    let all = headers ?? [];
    if (this.pendingHeaders !== null) {
      all = headers ? this.pendingHeaders.concat(headers) : this.pendingHeaders;
      this.pendingHeaders = null;
    }
    if (status < 100 || status > 599 || status === 101) {
      // Outside the range HTTP defines, or a switch of protocols nobody asked for (this pool never sends an
      // upgrade; WebSocket tunnels have their own connection): not an answer to forward.
      this.fail(
        'UPE',
        'protocol',
        `invalid upstream response: status ${status}${status === 101 ? ' without an upgrade' : ''}`,
      );
      return 0;
    }
    if (status < 200) {
      this.interim = true; // 100 Continue and friends: the final response follows
      return 0;
    }
    this.keepAlive = keepAlive;
    const sink = this.sink;
    if (sink === null) {
      // A response nobody is waiting for (a second one after the first, on an idle connection): the stream is
      // out of step, so the connection goes; kept, it would reach the pool twice and cross two requests' answers.
      this.socket.destroy();
      return 0;
    }
    // The exception boundary (one try per callback, as in flushHeld and onMessageComplete): a sink that throws
    // fails this request alone. Without it the throw escapes the parser's callback and ends the process.
    try {
      sink.onResponse(status, stripHopByHop(all), this.skipBody || status === 204 || status === 304);
    } catch (err) {
      this.sinkThrew(sink, err);
    }
    return this.skipBody ? 1 : 0;
  };

  /**
   * The latest body chunk of the current read is held back: if the message completes in the same read (a
   * small response) it goes out with the end, as one write downstream instead of a write and an end.
   */
  private held: Buffer | null = null;

  private readonly onBody = (chunk: Buffer): void => {
    if (this.held !== null) this.flushHeld();
    this.held = chunk;
  };

  private flushHeld(): void {
    const chunk = this.held;
    if (chunk === null) return;
    this.held = null;
    const sink = this.sink;
    if (sink === null) return;
    try {
      if (!sink.onData(chunk)) this.pauseReading();
    } catch (err) {
      this.sinkThrew(sink, err);
    }
  }

  private readonly onMessageComplete = (): void => {
    if (this.interim) {
      this.interim = false;
      return;
    }
    const sink = this.sink;
    const trailers = this.pendingHeaders;
    const last = this.held;
    this.pendingHeaders = null;
    this.held = null;
    this.sink = null;
    this.req = null;
    this.replay = null;
    if (sink === null) {
      this.socket.destroy(); // the end of a response nobody was waiting for (see onHeadersComplete)
      return;
    }
    try {
      sink.onEnd(trailers === null ? null : stripHopByHop(trailers), last);
    } catch (err) {
      this.sinkThrew(sink, err);
      return;
    }
    if (this.keepAlive && this.requestDone && !this.socket.destroyed) {
      // The sink may have paused the socket on the last chunk (downstream backpressure); nothing will
      // resume it once the response is over, so it goes back to the pool reading again.
      this.resumeReading();
      if (this.idleTimerSpent) {
        // Rare (a request longer than idleTimeoutMs): restart the spent idle timer from now.
        this.idleTimerSpent = false;
        this.socket.setTimeout(this.idleTimeoutMs);
      }
      this.pool.release(this);
    } else this.socket.destroy();
  };

  private fail(flag: 'UF' | 'UC' | 'UT' | 'UPE', source: ErrorSource, message: string, cause?: unknown): void {
    const sink = this.sink;
    const req = this.req;
    this.sink = null;
    this.req = null;
    this.held = null;
    this.socket.destroy();
    if (sink === null) return;
    const replay = this.replay;
    this.replay = null;
    if (source === 'upstream-reset' && req !== null && this.retryable(req, replay)) {
      this.detachBody?.();
      const kept = req.keptBody;
      this.successor =
        this.bodyRead && kept !== null
          ? this.pool.resend(req, sink, null, kept.next())
          : this.pool.resend(req, sink, this.bodyRead ? replay : null);
      return;
    }
    sink.onError(new UpstreamError(flag, source, message, this.connected, cause));
  }

  /**
   * The keep-alive close race (envoy#14981, nodejs/node#47130): the connection was reused, and it ended
   * before a single response byte came back, so the upstream most likely closed it as idle before reading the
   * request. Sent once more, on a fresh connection (not retried again there: it is not reused), when the
   * request can be replayed as it was: no body, or none of it taken from its stream yet, or — idempotent
   * methods only — all that was taken still kept (in the request's kept body, else here up to
   * REPLAY_LIMIT_BYTES). A non-idempotent request whose
   * body had begun to go out is not re-sent. Never after a response byte. A later pipeline phase
   * (onUpstreamResult) is meant to own this decision; it needs only these facts.
   */
  private retryable(req: OutboundRequest, replay: Buffer[] | null): boolean {
    if (this.requests <= 1 || this.responseSeen) return false;
    if (req.body === null || !this.bodyRead || replay !== null) return true;
    return req.keptBody !== null && req.keptBody.replayable && IDEMPOTENT.has(req.method);
  }

  /** A sink callback threw: the connection's state is unknown, so it is closed, and the sink told (UPE). */
  private sinkThrew(sink: ResponseSink, err: unknown): void {
    this.sink = null;
    this.held = null;
    this.socket.destroy();
    sink.onError(new ForwardError(err));
  }

  abort(): void {
    this.sink = null;
    this.req = null;
    this.held = null;
    this.socket.destroy();
    this.successor?.abort();
  }

  resume(): void {
    if (this.successor !== null) this.successor.resume();
    else this.resumeReading();
  }
}

export class H1Pool implements EndpointPool, SlotWaiter, WaitQueue {
  private readonly opts: PoolOptions;
  private readonly idle: H1Connection[] = [];
  private readonly all = new Set<H1Connection>();
  private readonly limits: ClusterLimits | null;
  /** Requests waiting for a connection (the cluster at maxConnections), oldest first. */
  private readonly waiters: SlotWait[] = [];
  private closed = false;

  constructor(opts: PoolOptions) {
    this.opts = opts;
    this.limits = opts.limits ?? null;
    this.limits?.addPool(this);
  }

  get connectionCount(): number {
    return this.all.size;
  }

  request(req: OutboundRequest, sink: ResponseSink): Exchange {
    let conn = this.idle.pop();
    while (conn !== undefined && conn.socket.destroyed) conn = this.idle.pop();
    if (conn === undefined) {
      const limits = this.limits;
      if (limits !== null && !limits.tryOpenConnection()) return this.wait(limits, req, sink);
      conn = this.open();
    }
    try {
      conn.start(req, sink);
    } catch (err) {
      conn.abort(); // the caller's boundary answers; this connection must not call the sink later
      throw err;
    }
    return conn;
  }

  /** At maxConnections: wait for a connection (bounded by maxPendingRequests), or fail now with UO. */
  private wait(limits: ClusterLimits, req: OutboundRequest, sink: ResponseSink): Exchange {
    if (!limits.tryWait(this)) {
      sink.onError(pendingOverflow());
      return NO_EXCHANGE;
    }
    const w = new SlotWait(this, req, sink);
    this.waiters.push(w);
    return w;
  }

  /** A waiter timed out or was aborted: false when it had left the queue already. */
  dropWaiter(w: SlotWait): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    w.served();
    this.limits?.stopWaiting(this);
    return true;
  }

  private serve(w: SlotWait, conn: H1Connection): void {
    w.served();
    w.inner = conn;
    try {
      conn.start(w.req, w.sink);
    } catch (err) {
      conn.abort();
      w.sink.onError(new ForwardError(err, 'IE'));
    }
  }

  /** SlotWaiter: the cluster freed a slot (already counted) for this pool's oldest waiter. */
  takeSlot(): void {
    const w = this.waiters.shift();
    if (w === undefined) {
      this.limits?.connectionClosed(); // nobody left to use it: give it back
      return;
    }
    this.serve(w, this.open());
  }

  /** SlotWaiter: another endpoint's request waits for a slot; an idle connection here gives its up. */
  closeIdle(): boolean {
    let conn = this.idle.pop();
    while (conn !== undefined && conn.socket.destroyed) conn = this.idle.pop();
    if (conn === undefined) return false;
    conn.socket.destroy();
    return true;
  }

  private open(): H1Connection {
    const conn = new H1Connection(this, this.opts);
    this.all.add(conn);
    return conn;
  }

  /** The keep-alive close race: `req` again, on a new connection (never an idle one: it may be as stale). */
  resend(req: OutboundRequest, sink: ResponseSink, replay: Buffer[] | null, body = req.body): H1Connection {
    req.attempts++;
    this.opts.onKeepAliveRetry?.();
    // Counted past the limit if need be: the connection it replaces is closing.
    if (this.limits !== null) this.limits.connections++;
    const conn = this.open();
    conn.start(req, sink, replay, body);
    return conn;
  }

  release(conn: H1Connection): void {
    const w = this.closed ? undefined : this.waiters.shift();
    if (w !== undefined) {
      this.limits!.stopWaiting(this);
      this.serve(w, conn);
    } else if (this.closed || this.idle.length >= this.opts.maxIdle) conn.socket.destroy();
    else this.idle.push(conn);
  }

  forget(conn: H1Connection): void {
    if (!this.all.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.limits?.connectionClosed();
  }

  close(): void {
    this.closed = true;
    this.limits?.removePool(this);
    for (const c of this.idle) c.socket.destroy();
    this.idle.length = 0;
    for (const c of this.all) if (!c.busy) c.socket.destroy();
  }
}
