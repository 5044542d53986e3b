// HTTP/1.1 downstream request context: one per request parsed by the connection (http1-connection.ts). It
// reads the request from the parser's raw header list (no header objects), runs through the pipeline like any
// context, and writes the upstream's response back itself: the head is serialised into one string and sent
// together with the first body bytes, so a small response is one socket write. Framing is ours to choose:
// the upstream's Content-Length when it gave one, chunked otherwise (or close-delimited for HTTP/1.0).
import type { PeerIdentity } from './peer.ts';
import type { Duplex, Readable } from 'node:stream';
import { RequestContext } from './context.ts';
import {
  FLAG,
  FLAG_HEADER,
  failureFlag,
  ForwardError,
  localReply,
  type RequestFlag,
  type UpstreamError,
} from './flags.ts';
import {
  ACTION_NAME_LENGTHS,
  connectionTokens,
  H_ATTEMPT_COUNT,
  H_CONNECTION,
  H_REQUEST_ID,
  H_SOURCE,
  H_TRACE,
  H_XFF,
  H_XFP,
  REQUEST_HEADER_ACTIONS,
} from './headers.ts';
import { type GatheredHeaders, pushMeshHeaders, routeOverrides } from './mesh-headers.ts';
import { type BodySource, RequestBody } from './http1-body.ts';
import type { Http1Socket } from './http1-socket.ts';
import { chunkHeader, CONTINUE, CRLF, dateHeaderLine, lastChunk, statusLine } from './http1-wire.ts';
import type { ListenerScope } from './scope.ts';
import type { FlatHeaders } from './upstream/types.ts';

const EMPTY = Buffer.alloc(0);

/** What the request line and head said, as the connection hands it over. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  /** HTTP/1.0: no chunked responses; keep-alive only when the client asked for it. */
  readonly http10: boolean;
  /** llhttp's verdict from the version and Connection: another request may follow on this connection. */
  readonly keepAlive: boolean;
}

/**
 * The connection a request arrived on, as its context writes to it (http1-connection.ts's Http1Connection is one):
 * the context answers through this, never through the connection's other workings.
 */
export interface Http1Downstream extends BodySource {
  readonly io: Pick<Http1Socket, 'writeString' | 'send'>;
  readonly remoteAddress: string;
  readonly encrypted: boolean;
  /** The connection's verified mTLS peer (peer.ts), or null. */
  readonly peer: PeerIdentity | null;
  readonly closed: boolean;
  /** The response is written: the next request on the connection may start. */
  responseDone(ctx: Http1Context): void;
  /** Whether the connection closes after this request's response. */
  mustCloseAfter(ctx: Http1Context): boolean;
  destroy(): void;
}

export class Http1Context extends RequestContext {
  readonly protocol = 'HTTP/1.1';
  readonly conn: Http1Downstream;
  readonly rawHeaders: string[];
  readonly http10: boolean;
  readonly keepAlive: boolean;
  /** The Upgrade field (websocket.ts tunnels "websocket"; any other upgrade is served as plain HTTP). */
  upgrade: string | undefined = undefined;
  /** A WebSocket upgrade's socket once the connection handed it over (websocket.ts); replies go there. */
  tunnel: Duplex | null = null;
  /** What followed the upgrade request on the socket, for the upstream. */
  tunnelHead: Buffer = EMPTY;
  /** The Expect field, when the client sent one. */
  expect: string | undefined = undefined;
  /** Request body as the parser delivers it; null when the request has none. */
  readonly body: RequestBody | null = null;
  private readonly contentLength: number = 0;
  private readonly chunked: boolean = false;
  /** The parser has seen the end of this request (its body included). */
  requestComplete = false;
  /** The response ended before the body did: the rest of the body is read and dropped. */
  dumpingBody = false;
  private continueSent = false;
  /** The response head has been built (it may still wait for the first body bytes to go out with them). */
  responseStarted = false;
  /** The connection closes after this response. */
  closeAfter = false;
  /** A write returned false: the upstream is paused until the socket drains. */
  waitingDrain = false;
  private pendingHead: string | null = null;
  private chunkedResponse = false;
  private bodyless = false;

  constructor(listener: ListenerScope, conn: Http1Downstream, head: RequestHead) {
    super(listener);
    this.conn = conn;
    this.method = head.method;
    const url = head.url;
    this.url = url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.rawHeaders = head.rawHeaders;
    this.http10 = head.http10;
    this.keepAlive = head.keepAlive;
    this.remoteAddress = conn.remoteAddress;
    this.peer = conn.peer;
    if (conn.encrypted) this.scheme = 'https';
    // The fields every request needs, read off the raw list; the length check skips the lowercase for most
    // names. llhttp has already rejected conflicting Content-Length and Transfer-Encoding fields.
    const raw = head.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i];
      switch (n.length) {
        case 4:
          if (n.toLowerCase() === 'host') this.authority = raw[i + 1];
          break;
        case 6:
          if (n.toLowerCase() === 'expect') this.expect = raw[i + 1];
          break;
        case 7:
          if (n.toLowerCase() === 'upgrade') this.upgrade = raw[i + 1];
          break;
        case 14:
          if (n.toLowerCase() === 'content-length') this.contentLength = Number(raw[i + 1]);
          break;
        case 17:
          if (n.toLowerCase() === 'transfer-encoding') this.chunked = true;
          break;
      }
    }
    if (this.chunked || this.contentLength > 0) this.body = new RequestBody(conn);
  }

  /** Header value by lowercase name, repeated fields joined with ", " (cookies with "; "), as node:http did. */
  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    let value: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i];
      if (n.length !== name.length || n.toLowerCase() !== name) continue;
      value = value === undefined ? raw[i + 1] : `${value}${name === 'cookie' ? '; ' : ', '}${raw[i + 1]}`;
    }
    return value;
  }

  requestBody(): { body: Readable | null; contentLength: number } {
    const body = this.body;
    if (body === null) return { body: null, contentLength: 0 };
    // The client waits for our go-ahead before sending the body: given now that it is about to be streamed.
    if (this.expect !== undefined && !this.continueSent && !this.requestComplete) {
      this.continueSent = true;
      this.conn.io.writeString(CONTINUE);
    }
    return { body, contentLength: this.chunked ? -1 : this.contentLength };
  }

  upstreamHeaders(): FlatHeaders {
    const raw = this.rawHeaders;
    const out: FlatHeaders = [];
    const g: GatheredHeaders = { xff: undefined, xfp: undefined, requestId: undefined, source: undefined };
    let named: string[] | null = null;
    const route = this.route!;
    const routeEdits = route.removeHeaders.size !== 0 || route.setHeaders.length !== 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      if (!routeEdits && !ACTION_NAME_LENGTHS.has(name.length)) {
        out.push(name, raw[i + 1]);
        continue;
      }
      const lower = name.toLowerCase();
      const action = REQUEST_HEADER_ACTIONS.get(lower);
      if (action === undefined) {
        if (!routeOverrides(this, lower)) out.push(name, raw[i + 1]);
        continue;
      }
      switch (action) {
        case H_XFF:
          g.xff = g.xff === undefined ? raw[i + 1] : `${g.xff}, ${raw[i + 1]}`;
          break;
        case H_XFP:
          g.xfp = raw[i + 1];
          break;
        case H_REQUEST_ID:
          g.requestId = raw[i + 1];
          break;
        case H_SOURCE:
          g.source = raw[i + 1];
          break;
        case H_TRACE:
          if (!this.tracerRewrites(lower)) out.push(name, raw[i + 1]);
          break;
        case H_ATTEMPT_COUNT:
          // The caller's count passes on unless this request's retry policy writes its own.
          if (this.retryPolicy === null) out.push(name, raw[i + 1]);
          break;
        case H_CONNECTION: {
          const v = raw[i + 1].toLowerCase();
          if (v !== 'keep-alive' && v !== 'close') named = connectionTokens(v, named);
          break;
        }
        // H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING: written by the pool from the context;
        // H_TARGET, H_PEER_CERT: written by pushMeshHeaders; H_DROP, H_TE: hop-by-hop.
      }
    }
    if (named !== null) dropNamed(out, named);
    pushMeshHeaders(this, out, g, this.scheme);
    return out;
  }

  /** Bytes of the response are on the wire: from here an error can only cut the connection. */
  private get headWritten(): boolean {
    return this.responseStarted && this.pendingHead === null;
  }

  replyLocal(status: number, flag: RequestFlag, message: string, _grpcStatus: number): void {
    if (this.tunnel !== null) {
      this.replyOnTunnel(this.tunnel, status, flag, message);
      return;
    }
    if (!this.headWritten && !this.conn.closed) {
      // An upstream head built but not yet written (it waits for the first body bytes) is replaced.
      this.pendingHead = null;
      this.responseStarted = true;
      const body = `${message}\n`;
      this.responseBytes = Buffer.byteLength(body);
      const requestId = this.requestId || this.ensureRequestId(this.header('x-request-id'));
      const head =
        `${statusLine(status)}content-type: text/plain\r\ncontent-length: ${this.responseBytes}\r\n` +
        `${FLAG_HEADER}: ${flag}\r\nx-request-id: ${requestId}\r\n` +
        `${this.retryAfterSec > 0 ? `retry-after: ${this.retryAfterSec}\r\n` : ''}${dateHeaderLine()}${this.connectionField()}\r\n`;
      if (this.method === 'HEAD') this.conn.io.writeString(head);
      else this.conn.io.send(head, '', Buffer.from(body), '');
      this.finish(status, flag);
      this.conn.responseDone(this);
      return;
    }
    this.conn.destroy();
    this.finish(status, flag);
  }

  respond(status: number, headers: FlatHeaders, endStream: boolean): void {
    this.status = status;
    this.noteUpstreamHead(headers, endStream);
    const noBodyAllowed = this.method === 'HEAD' || status === 204 || status === 304;
    this.bodyless = endStream || noBodyAllowed;
    let head = statusLine(status);
    let hasLength = false;
    let hasDate = false;
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i];
      if (n.length === 14 && n.toLowerCase() === 'content-length') hasLength = true;
      else if (n.length === 4 && n.toLowerCase() === 'date') hasDate = true;
      head += `${n}: ${headers[i + 1]}\r\n`;
    }
    if (!hasDate) head += dateHeaderLine();
    if (!hasLength && !noBodyAllowed) {
      if (endStream) head += 'content-length: 0\r\n';
      else if (this.http10)
        this.closeAfter = true; // the end of the body is the end of the connection
      else {
        this.chunkedResponse = true;
        head += 'transfer-encoding: chunked\r\n';
      }
    }
    this.pendingHead = `${head}${this.connectionField()}\r\n`;
    this.responseStarted = true;
  }

  write(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    if (this.bodyless) return true;
    const head = this.pendingHead;
    this.pendingHead = null;
    const ok = this.chunkedResponse
      ? this.conn.io.send(head, chunkHeader(chunk.length), chunk, CRLF)
      : this.conn.io.send(head, '', chunk, '');
    if (!ok) this.waitingDrain = true;
    return ok;
  }

  end(trailers: FlatHeaders | null, last: Buffer | null): void {
    const head = this.pendingHead;
    this.pendingHead = null;
    if (last !== null) this.responseBytes += last.length;
    if (this.bodyless || last === null || last.length === 0) {
      const tail = this.chunkedResponse ? lastChunk(trailers) : '';
      if (head !== null) this.conn.io.writeString(head + tail);
      else if (tail !== '') this.conn.io.writeString(tail);
    } else if (this.chunkedResponse) {
      this.conn.io.send(head, chunkHeader(last.length), last, `\r\n${lastChunk(trailers)}`);
    } else this.conn.io.send(head, '', last, '');
    this.finish(this.status, '');
    this.conn.responseDone(this);
  }

  fail(err: UpstreamError): void {
    if (err instanceof ForwardError) {
      this.onException(err.cause, err.flag);
      return;
    }
    try {
      this.exchange = null;
      this.listener.log.debug('upstream error', { requestId: this.requestId, flag: err.flag, error: err.message });
      if (this.headWritten) {
        // Mid-response: the only honest signal left is to cut the connection.
        this.conn.destroy();
        this.finish(this.status, err.flag);
        return;
      }
      const reply = localReply(err.flag);
      const flag = failureFlag(this.flag, err.flag);
      this.replyLocal(reply.status, flag, `${reply.message}: ${err.message}`, reply.grpcStatus);
    } catch (thrown) {
      this.onException(thrown, 'IE');
    }
  }

  abortDownstream(): void {
    if (this.tunnel !== null) this.tunnel.destroy();
    else this.conn.destroy();
  }

  /** An upgrade that gets no tunnel: the reply any HTTP/1.1 local reply is, then the connection closes. */
  private replyOnTunnel(socket: Duplex, status: number, flag: RequestFlag, message: string): void {
    if (this.finished || socket.destroyed) {
      socket.destroy();
      this.finish(status, flag);
      return;
    }
    const body = `${message}\n`;
    this.responseBytes = Buffer.byteLength(body);
    const requestId = this.requestId || this.ensureRequestId(this.header('x-request-id'));
    socket.end(
      `${statusLine(status)}content-type: text/plain\r\ncontent-length: ${this.responseBytes}\r\n` +
        `${FLAG_HEADER}: ${flag}\r\nx-request-id: ${requestId}\r\n` +
        `${this.retryAfterSec > 0 ? `retry-after: ${this.retryAfterSec}\r\n` : ''}` +
        `${dateHeaderLine()}connection: close\r\n\r\n${body}`,
    );
    // Read (and drop) until the client's FIN, so the connection closes rather than waiting half-open.
    socket.resume();
    this.finish(status, flag);
  }

  /** The downstream went away (or was cut) before this request finished. */
  onDownstreamGone(): void {
    this.body?.destroy();
    if (this.finished) return;
    const ex = this.exchange;
    this.exchange = null;
    ex?.abort();
    this.finish(this.status || 499, FLAG.DownstreamDisconnect);
  }

  /** Decided once per response, when its head is built: does the connection end after it? */
  private connectionField(): string {
    if (!this.closeAfter) this.closeAfter = this.conn.mustCloseAfter(this);
    if (this.closeAfter) return 'connection: close\r\n';
    return this.http10 ? 'connection: keep-alive\r\n' : '';
  }

  /** The client sent "Expect: 100-continue" and never got the go-ahead: its body may never come. */
  get bodyWithheld(): boolean {
    return this.expect !== undefined && !this.continueSent && !this.requestComplete;
  }
}

function dropNamed(out: FlatHeaders, names: string[]): void {
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (names.includes(out[i].toLowerCase())) out.splice(i, 2);
  }
}
