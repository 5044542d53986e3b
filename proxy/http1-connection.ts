// One downstream HTTP/1.1 connection, parsed by Node's llhttp binding straight from the socket's handle (no
// 'data' events, no IncomingMessage/ServerResponse). Requests are answered in order: a pipelined request
// waits in a queue until the response before it is written. Malformed input gets 400/413/431, a head that
// takes too long 408 (http1-connections.ts sweeps the timers), and a WebSocket upgrade hands the socket to
// websocket.ts once the requests before it are answered.
import { peerOf, type PeerIdentity } from './peer.ts';
import { originalDstOf, type OriginalDst } from './original-dst.ts';
import type net from 'node:net';
import { type LocalReply, localReply, REASON } from './flags.ts';
import { type Http1Downstream, Http1Context } from './http1.ts';
import { Http1Socket, PAUSE_BODY, PAUSE_HELD, PAUSE_QUEUE } from './http1-socket.ts';
import { malformedRequestResponse, replyForParseError } from './http1-wire.ts';
import type { ScopeSource } from './scope.ts';
import { handleRequest } from './pipeline.ts';
import { HTTPParser, type LlhttpParser, METHODS } from './llhttp.ts';
import { isWebSocketUpgrade, onUpgrade } from './websocket.ts';

/** Pipelined requests parsed ahead of their turn, at most; beyond that the socket is not read. */
const MAX_QUEUED = 16;
const EMPTY = Buffer.alloc(0);

export interface Http1Limits {
  readonly maxHeaderBytes: number;
  /** A client must send a whole request head within this (slowloris); 408 after it. */
  readonly headersTimeoutMs: number;
  /** A keep-alive connection with nothing in flight closes after this. */
  readonly idleTimeoutMs: number;
}

/** What a connection needs of the set that holds it (http1-connections.ts's Http1Connections is one). */
export interface ConnectionOwner {
  readonly limits: Http1Limits;
  readonly draining: boolean;
  remove(conn: Http1Connection): void;
}

export class Http1Connection implements Http1Downstream {
  readonly socket: net.Socket;
  /** Reads (pause reasons) and writes; the contexts write their responses through it. */
  readonly io: Http1Socket;
  readonly remoteAddress: string;
  /** The verified mTLS peer of this connection (peer.ts), or null. */
  readonly peer: PeerIdentity | null;
  /** Where a redirected client was going (original-dst.ts), or null. */
  readonly originalDst: OriginalDst | null;
  readonly encrypted: boolean;
  readonly headersTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** performance.now() when the head being received began; 0 when no head is under way. */
  headStartMs: number;
  /** Nothing received yet: a timeout then closes the connection without an answer. */
  silent = true;
  idleSinceMs: number;
  /** The request being answered; later pipelined requests wait in `queue`. */
  active: Http1Context | null = null;
  /** No more responses will be written (the socket is ending or gone). */
  closed = false;
  /** The listener: each request takes the scope serving when its head arrives. */
  private readonly listener: ScopeSource;
  private readonly owner: ConnectionOwner;
  private readonly parser: LlhttpParser;
  private readonly queue: Http1Context[] = [];
  /** The request whose body the parser is reading (from its head's end to its message end). */
  private reading: Http1Context | null = null;
  private partialHeaders: string[] | null = null;
  private partialUrl = '';
  /** llhttp stops after an Upgrade request: the rest of that read is either the tunnel's or still ours. */
  private upgradeSeen = false;
  private upgrading: Http1Context | null = null;
  private upgradeHead: Buffer = EMPTY;
  /** The reply to a malformed request, written once the responses before it are done. */
  private pendingError: LocalReply | null = null;

  constructor(owner: ConnectionOwner, listener: ScopeSource, socket: net.Socket) {
    this.owner = owner;
    this.listener = listener;
    this.socket = socket;
    this.io = new Http1Socket(socket);
    this.remoteAddress = socket.remoteAddress ?? '';
    this.encrypted = (socket as { encrypted?: boolean }).encrypted === true;
    this.peer = peerOf(socket);
    this.originalDst = originalDstOf(socket);
    const limits = owner.limits;
    this.headersTimeoutMs = limits.headersTimeoutMs;
    this.idleTimeoutMs = limits.idleTimeoutMs;
    this.headStartMs = this.idleSinceMs = performance.now();
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, limits.maxHeaderBytes, 0);
    parser[HTTPParser.kOnMessageBegin] = this.onMessageBegin;
    parser[HTTPParser.kOnHeaders] = this.onHeaders;
    parser[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    parser[HTTPParser.kOnBody] = this.onBody;
    parser[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    this.parser = parser;
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
  }

  /** Start parsing; `first` holds bytes already read from the socket (protocol detection). */
  start(first: Buffer | null): void {
    const buffered = this.io.attach(this.parser, this.afterExecute, first);
    if (buffered !== null && buffered.length > 0) this.afterExecute(this.parser.execute(buffered), buffered);
  }

  /** After a read is parsed: errors, and what follows an Upgrade request in the same read. */
  private readonly afterExecute = (ret: number | Error, chunk: Buffer | null): void => {
    if (typeof ret !== 'number') {
      this.onParseError((ret as NodeJS.ErrnoException).code ?? 'HPE_ERROR');
      return;
    }
    if (!this.upgradeSeen) return;
    this.upgradeSeen = false;
    const buf = chunk ?? this.parser.getCurrentBuffer();
    const rest = ret < buf.length ? buf.subarray(ret) : null;
    if (this.upgrading !== null) {
      this.upgradeHead = rest ?? EMPTY;
      this.io.pause(PAUSE_HELD);
      this.maybeUpgrade();
    } else if (rest !== null && !this.closed) {
      // Not a WebSocket upgrade: served as plain HTTP, so what follows is the next request.
      this.afterExecute(this.parser.execute(rest), rest);
    }
  };

  private readonly onMessageBegin = (): void => {
    this.headStartMs = performance.now();
    this.silent = false;
  };

  private readonly onHeaders = (headers: string[], url: string): void => {
    if (this.reading !== null) return; // trailer fields of a chunked request body: not forwarded
    this.partialHeaders = this.partialHeaders === null ? headers : this.partialHeaders.concat(headers);
    this.partialUrl += url;
  };

  private readonly onHeadersComplete = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _status: unknown,
    _statusMessage: unknown,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    this.headStartMs = 0;
    let raw = headers ?? [];
    if (this.partialHeaders !== null) {
      raw = headers ? this.partialHeaders.concat(headers) : this.partialHeaders;
      this.partialHeaders = null;
    }
    const target = url || this.partialUrl;
    this.partialUrl = '';
    if (this.closed || this.pendingError !== null) return 0;
    // RFC 9112 §3.2: a 1.1 request without Host, or any request with more than one, is rejected.
    const hosts = countHost(raw);
    if (hosts > 1 || (hosts === 0 && minor === 1)) {
      this.onParseError(hosts === 0 ? 'HOST_MISSING' : 'HOST_REPEATED');
      return 0;
    }
    const methodName = METHODS[method];
    if (methodName === 'CONNECT') {
      this.onParseError('CONNECT_UNSUPPORTED');
      return 0;
    }
    const ctx = new Http1Context(this.listener.scope, this, {
      method: methodName,
      url: target,
      rawHeaders: raw,
      http10: major === 1 && minor === 0,
      keepAlive,
    });
    this.reading = ctx;
    if (upgrade) {
      this.upgradeSeen = true;
      // Only WebSocket upgrades are tunnelled; any other (h2c from `curl --http2`, …) is served as a plain
      // request with Upgrade dropped as hop-by-hop, never a raw pipe past the pipeline (h2c smuggling).
      if (isWebSocketUpgrade(ctx.upgrade)) {
        this.upgrading = ctx;
        return 0;
      }
    }
    if (this.active === null) {
      this.active = ctx;
      this.dispatch(ctx);
    } else {
      this.queue.push(ctx);
      if (this.queue.length >= MAX_QUEUED) this.io.pause(PAUSE_QUEUE);
    }
    return 0;
  };

  private readonly onBody = (chunk: Buffer): void => {
    const ctx = this.reading;
    if (ctx === null) return;
    ctx.requestBytes += chunk.length;
    const body = ctx.body;
    if (ctx.dumpingBody || body === null || body.destroyed) return;
    if (!body.push(chunk)) this.io.pause(PAUSE_BODY);
  };

  private readonly onMessageComplete = (): void => {
    const ctx = this.reading;
    if (ctx === null) return;
    this.reading = null;
    ctx.requestComplete = true;
    const body = ctx.body;
    if (body !== null && !ctx.dumpingBody && !body.destroyed) body.push(null);
  };

  private dispatch(ctx: Http1Context): void {
    if (ctx.expect !== undefined && ctx.expect.toLowerCase() !== '100-continue') {
      const r = localReply(REASON.UnsupportedExpectation);
      ctx.replyLocal(r.status, r.flag, r.message, r.grpcStatus);
      return;
    }
    handleRequest(ctx);
  }

  /** The request body's consumer wants more. */
  resumeBody(): void {
    this.io.resume(PAUSE_BODY);
  }

  /** Called by the context once its response is written completely (or answered locally). */
  responseDone(ctx: Http1Context): void {
    if (ctx !== this.active) return;
    this.active = null;
    if (!ctx.requestComplete) {
      // Answered before the whole body arrived: read the rest and drop it, so the next request can follow.
      ctx.dumpingBody = true;
      ctx.body?.destroy();
      this.io.resume(PAUSE_BODY);
    }
    if (ctx.closeAfter) this.end();
    else this.next();
  }

  /** Should the response being started be the connection's last? */
  mustCloseAfter(ctx: Http1Context): boolean {
    // A client still waiting for 100 Continue may or may not send its body: the stream is ambiguous after this.
    return !ctx.keepAlive || this.owner.draining || ctx.bodyWithheld;
  }

  private next(): void {
    if (this.closed) return;
    const queue = this.queue;
    if (queue.length > 0) {
      const ctx = queue.shift()!;
      this.active = ctx;
      if (queue.length < MAX_QUEUED) this.io.resume(PAUSE_QUEUE);
      // Next tick: this runs inside the previous response's last upstream callback, and its upstream
      // connection goes back to the pool only after that returns.
      process.nextTick(dispatchQueued, this, ctx);
      return;
    }
    if (this.pendingError !== null) this.answerMalformed(this.pendingError);
    else if (this.upgrading !== null) this.maybeUpgrade();
    else {
      this.idleSinceMs = performance.now();
      if (this.owner.draining && this.headStartMs === 0) this.end();
    }
  }

  /** Dispatch of a request that waited behind another (see next()). */
  dispatchQueued(ctx: Http1Context): void {
    if (!this.closed && !ctx.finished && this.active === ctx) this.dispatch(ctx);
  }

  /**
   * Malformed input (parser error, missing Host, head timeout): count it, stop parsing, and answer it with
   * its status once the responses before it are written; a response already under way can only be cut.
   */
  onParseError(code: string): void {
    if (this.closed) return;
    this.io.pause(PAUSE_HELD);
    // Bytes after a "Connection: close" request are ignored: that request is answered and the connection ends.
    if (code === 'HPE_CLOSED_CONNECTION') return;
    const reply = replyForParseError(code);
    const scope = this.listener.scope;
    scope.stats.onProtocolError(scope.name, code);
    scope.log.debug('bad request', { listener: scope.name, code, status: reply.status });
    const ctx = this.reading;
    this.reading = null;
    if (ctx !== null) {
      // The request's body is broken: the upstream must not get a truncated body that looks complete.
      ctx.body?.destroy();
      if (ctx === this.active) {
        if (ctx.responseStarted) {
          this.destroy();
          return;
        }
        this.active = null;
        const ex = ctx.exchange;
        ctx.exchange = null;
        ex?.abort();
      } else if (ctx === this.upgrading) this.upgrading = null;
      else this.queue.splice(this.queue.indexOf(ctx), 1);
      ctx.finish(reply.status, reply.flag);
    }
    this.pendingError = reply;
    if (this.active === null) this.answerMalformed(reply);
  }

  private answerMalformed(reply: LocalReply): void {
    this.closed = true;
    this.idleSinceMs = performance.now();
    this.abandonQueue();
    if (this.socket.writable) this.socket.end(malformedRequestResponse(reply), 'latin1');
    else this.socket.destroy();
    this.io.readUntilEnd();
  }

  /** From the sweep: the head under way (or the first one, never begun) took longer than headersTimeoutMs. */
  onHeadTimeout(): void {
    if (this.silent) this.destroy();
    else this.onParseError('ERR_HTTP_REQUEST_TIMEOUT');
  }

  /** Idle between requests (nothing in flight, no head begun): close now; used by the sweep and drain. */
  get idle(): boolean {
    return (
      this.active === null &&
      this.queue.length === 0 &&
      this.headStartMs === 0 &&
      this.reading === null &&
      this.upgrading === null
    );
  }

  private maybeUpgrade(): void {
    const ctx = this.upgrading;
    if (ctx === null || this.active !== null || this.queue.length > 0 || this.closed) return;
    this.upgrading = null;
    this.reading = null;
    // From here on the socket belongs to the tunnel: no parser, none of our listeners.
    this.closed = true;
    this.owner.remove(this);
    this.socket.off('close', this.onClose);
    this.socket.off('drain', this.onDrain);
    this.io.detach(true);
    onUpgrade(ctx, this.socket, this.upgradeHead);
  }

  /** Finish writing what is queued, then close. Requests still waiting are dropped (the client sees the close). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.idleSinceMs = performance.now();
    this.abandonQueue();
    this.socket.end();
    this.io.readUntilEnd();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private abandonQueue(): void {
    for (const ctx of this.queue) ctx.onDownstreamGone();
    this.queue.length = 0;
    this.upgrading?.onDownstreamGone();
    this.upgrading = null;
  }

  private readonly onDrain = (): void => {
    const ctx = this.active;
    if (ctx !== null && ctx.waitingDrain) {
      ctx.waitingDrain = false;
      ctx.exchange?.resume();
    }
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.owner.remove(this);
    const active = this.active;
    this.active = null;
    active?.onDownstreamGone();
    this.reading?.onDownstreamGone();
    this.reading = null;
    this.abandonQueue();
    this.io.detach(false);
  };
}

function dispatchQueued(conn: Http1Connection, ctx: Http1Context): void {
  conn.dispatchQueued(ctx);
}

function countHost(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') n++;
  return n;
}
