// HTTP/2 downstream (h2c prior knowledge, or h2 by ALPN): one context per stream, gRPC included. Trailers
// pass through, grpc-timeout becomes the request deadline, and a reset on either side cancels the other:
// the client's RST_STREAM cancels the upstream stream, an upstream reset resets the client's stream.
import { peerOf } from './peer.ts';
import { originalDstOf } from './original-dst.ts';
import http2 from 'node:http2';
import { addAbortSignal, type Readable } from 'node:stream';
import { parseGrpcTimeoutMs, RequestContext } from './context.ts';
import {
  errorMessage,
  FLAG,
  FLAG_HEADER,
  ForwardError,
  GRPC_STATUS,
  failureFlag,
  localReply,
  type RequestFlag,
  type UpstreamError,
} from './flags.ts';
import {
  H_ATTEMPT_COUNT,
  H_REQUEST_ID,
  H_SOURCE,
  H_TE,
  H_TRACE,
  H_XFF,
  H_XFP,
  REQUEST_HEADER_ACTIONS,
} from './headers.ts';
import { type GatheredHeaders, pushMeshHeaders, routeOverrides } from './mesh-headers.ts';
import type { ListenerScope } from './scope.ts';
import { handleRequest } from './pipeline.ts';
import type { FlatHeaders } from './upstream/types.ts';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

function flatToH2(status: number, headers: FlatHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i].toLowerCase();
    const prev = out[k];
    if (prev === undefined) out[k] = headers[i + 1];
    else if (Array.isArray(prev)) prev.push(headers[i + 1]);
    else out[k] = [String(prev), headers[i + 1]];
  }
  return out;
}

/**
 * grpc-message is percent-encoded the gRPC way (PROTOCOL-HTTP2.md): printable ASCII except '%' stays as is,
 * every other UTF-8 byte becomes %XX. Not encodeURIComponent: clients decode with decodeURI, which leaves
 * reserved characters such as ':' encoded ("upstream connect error%3A ...").
 */
export function encodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Resets the client's stream with RST_STREAM(CANCEL) mid-response. Not `stream.close(NGHTTP2_CANCEL)`: once
 * the client has ended its side (any request without a body still in flight), node first flushes an
 * END_STREAM, the stream is then closed and the reset never goes out, so the client takes a truncated
 * response for a complete one. Destroying with an AbortError skips the END_STREAM; node sends CANCEL for it.
 */
function resetStream(stream: http2.ServerHttp2Stream): void {
  addAbortSignal(AbortSignal.abort(), stream);
}

export class Http2Context extends RequestContext {
  readonly protocol = 'HTTP/2';
  readonly stream: http2.ServerHttp2Stream;
  readonly headers: http2.IncomingHttpHeaders;
  private readonly endStream: boolean;
  private trailers: http2.OutgoingHttpHeaders | null = null;
  private drainHooked = false;
  private responseIsGrpc = false;

  constructor(
    listener: ListenerScope,
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
  ) {
    super(listener);
    this.stream = stream;
    this.headers = headers;
    this.endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    const url = headers[':path'] ?? '/';
    this.url = url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.method = headers[':method'] ?? 'GET';
    this.authority = headers[':authority'] ?? headers.host ?? '';
    const socket = stream.session?.socket;
    this.remoteAddress = socket?.remoteAddress ?? '';
    if (socket !== undefined) {
      this.peer = peerOf(socket);
      this.originalDst = originalDstOf(socket);
    }
    if (stream.session?.encrypted === true) this.scheme = 'https';
    const ct = headers['content-type'];
    this.isGrpc = ct !== undefined && ct.startsWith('application/grpc');
    if (this.isGrpc) {
      const deadline = parseGrpcTimeoutMs(headers['grpc-timeout'] as string | undefined);
      if (deadline !== undefined) this.timeoutMs = Math.max(1, deadline);
    }
    stream.once('close', this.onDownstreamClose);
    // A client's RST_STREAM with an error code (anything but CANCEL) is emitted as 'error' before 'close';
    // without a listener it is an uncaught exception that takes the whole proxy down.
    stream.on('error', this.onDownstreamError);
  }

  header(name: string): string | undefined {
    const v = this.headers[name];
    // HTTP/2 carries the Host as :authority (RFC 9113 §8.3.1): a `host` condition reads it there, as Envoy's does.
    if (v === undefined && name === 'host') return this.headers[':authority'];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  requestBody(): { body: Readable | null; contentLength: number } {
    if (this.endStream) return { body: null, contentLength: 0 };
    this.stream.on('data', this.countRequestBytes);
    const cl = this.headers['content-length'];
    return { body: this.stream, contentLength: cl === undefined ? -1 : Number(cl) };
  }

  private readonly countRequestBytes = (chunk: Buffer): void => {
    this.requestBytes += chunk.length;
  };

  upstreamHeaders(): FlatHeaders {
    const out: FlatHeaders = [];
    const g: GatheredHeaders = { xff: undefined, xfp: undefined, requestId: undefined, source: undefined };
    const h = this.headers;
    for (const name in h) {
      if (name.charCodeAt(0) === 58 /* : */) continue;
      const v = h[name];
      if (v === undefined) continue;
      const action = REQUEST_HEADER_ACTIONS.get(name);
      if (action === undefined) {
        if (routeOverrides(this, name)) continue;
        if (Array.isArray(v)) for (const x of v) out.push(name, x);
        else out.push(name, v);
        continue;
      }
      const value = Array.isArray(v) ? v.join(', ') : v;
      switch (action) {
        case H_XFF:
          g.xff = value;
          break;
        case H_XFP:
          g.xfp = value;
          break;
        case H_REQUEST_ID:
          g.requestId = value;
          break;
        case H_SOURCE:
          g.source = value;
          break;
        case H_TRACE:
          if (!this.tracerRewrites(name)) out.push(name, value);
          break;
        case H_ATTEMPT_COUNT:
          if (this.retryPolicy === null) out.push(name, value);
          break;
        case H_TE:
          // gRPC needs "te: trailers" end to end; it is the only TE value HTTP/2 allows.
          if (value === 'trailers') out.push('te', 'trailers');
          break;
      }
    }
    pushMeshHeaders(this, out, g, this.scheme);
    return out;
  }

  replyLocal(status: number, flag: RequestFlag, message: string, grpcStatus: number): void {
    const stream = this.stream;
    const requestId = this.requestId || this.ensureRequestId(this.header('x-request-id'));
    if (stream.destroyed || stream.closed) {
      this.finish(status, flag);
      return;
    }
    if (this.isGrpc) this.grpcStatus = grpcStatus;
    if (!stream.headersSent) {
      if (this.isGrpc) {
        // Trailers-only gRPC response: HTTP 200 with the status in the headers.
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': String(grpcStatus),
            'grpc-message': encodeGrpcMessage(message),
            [FLAG_HEADER]: flag,
            'x-request-id': requestId,
          },
          { endStream: true },
        );
      } else {
        const head: Record<string, string | number> = {
          ':status': status,
          'content-type': 'text/plain',
          [FLAG_HEADER]: flag,
          'x-request-id': requestId,
        };
        if (this.retryAfterSec > 0) head['retry-after'] = this.retryAfterSec;
        stream.respond(head);
        const body = `${message}\n`;
        this.responseBytes = Buffer.byteLength(body);
        stream.end(body);
      }
    } else if (this.isGrpc && this.responseIsGrpc && !stream.writableEnded) {
      this.trailers = {
        'grpc-status': String(grpcStatus),
        'grpc-message': encodeGrpcMessage(message),
        [FLAG_HEADER]: flag,
      };
      stream.end();
    } else resetStream(stream);
    this.finish(this.isGrpc ? 200 : status, flag);
  }

  respond(status: number, headers: FlatHeaders, endStream: boolean): void {
    this.status = status;
    this.noteUpstreamHead(headers, endStream);
    const out = flatToH2(status, headers);
    const ct = out['content-type'];
    this.responseIsGrpc = typeof ct === 'string' && ct.startsWith('application/grpc');
    const waitForTrailers = !endStream && (this.responseIsGrpc || out.trailer !== undefined);
    delete out.trailer;
    if (waitForTrailers) this.stream.once('wantTrailers', this.sendTrailers);
    this.stream.respond(out, { endStream, waitForTrailers });
  }

  private readonly sendTrailers = (): void => {
    // Emitted by the session, outside any pool callback: its own boundary. A trailer field HTTP/2 refuses
    // leaves the body complete but the trailers unsendable, so the stream is reset rather than ended clean.
    try {
      this.stream.sendTrailers(this.trailers ?? {});
    } catch (err) {
      this.listener.log.error('request failed', {
        listener: this.listener.name,
        requestId: this.requestId,
        flag: FLAG.UpstreamProtocolError,
        error: `trailers could not be forwarded: ${errorMessage(err)}`,
      });
      resetStream(this.stream); // the request was counted when its body ended (onEnd)
    }
  };

  write(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    if (this.stream.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.stream.on('drain', () => this.exchange?.resume());
    }
    return false;
  }

  end(trailers: FlatHeaders | null, last: Buffer | null): void {
    if (trailers !== null && trailers.length > 0) {
      if (this.isGrpc) this.noteGrpcStatus(trailers);
      const t = flatToH2(0, trailers);
      delete t[':status'];
      this.trailers = t;
    }
    if (!this.stream.writableEnded && !this.stream.destroyed) {
      if (last !== null) {
        this.responseBytes += last.length;
        this.stream.end(last);
      } else this.stream.end();
    }
    this.finish(this.status, '');
  }

  fail(err: UpstreamError): void {
    if (err instanceof ForwardError) {
      this.onException(err.cause, err.flag);
      return;
    }
    try {
      this.upstreamFailed(err);
    } catch (thrown) {
      this.onException(thrown, 'IE');
    }
  }

  abortDownstream(): void {
    resetStream(this.stream);
  }

  private upstreamFailed(err: UpstreamError): void {
    this.exchange = null;
    this.listener.log.debug('upstream error', { requestId: this.requestId, flag: err.flag, error: err.message });
    const reply = localReply(err.flag);
    // The upstream cancelled the stream (RST_STREAM(CANCEL)): gRPC says CANCELLED, not UNAVAILABLE.
    const grpc =
      err.source === 'upstream-reset' && err.http2Code === NGHTTP2_CANCEL ? GRPC_STATUS.CANCELLED : reply.grpcStatus;
    if (this.stream.headersSent && !this.isGrpc) {
      resetStream(this.stream);
      this.finish(this.status, err.flag);
      return;
    }
    this.replyLocal(reply.status, failureFlag(this.flag, err.flag), `${reply.message}: ${err.message}`, grpc);
  }

  private readonly onDownstreamError = (err: Error): void => {
    // Cleanup and the DC flag follow in onDownstreamClose.
    this.listener.log.debug('downstream stream error', { requestId: this.requestId, error: err.message });
  };

  private readonly onDownstreamClose = (): void => {
    if (this.finished) return;
    const ex = this.exchange;
    this.exchange = null;
    ex?.abort(); // RST_STREAM(CANCEL) upstream
    this.finish(this.status || 499, FLAG.DownstreamDisconnect);
  };
}

export function onHttp2Stream(
  listener: ListenerScope,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  flags: number,
): void {
  const ctx = new Http2Context(listener, stream, headers, flags);
  handleRequest(ctx);
}
