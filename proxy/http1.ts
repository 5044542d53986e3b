// HTTP/1.1 downstream: node:http's server (llhttp) parses requests, rejects malformed ones and smuggling
// attempts, and enforces header timeouts; this file turns each request into a pipeline run and writes the
// upstream response back with backpressure. Keep-alive, pipelining and chunked framing are node:http's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { RequestContext } from './context.ts';
import { FLAG, FLAG_HEADER, type ResponseFlag, type UpstreamError } from './flags.ts';
import {
  type GatheredHeaders,
  H_CONNECTION,
  H_REQUEST_ID,
  H_SOURCE,
  H_TRACE,
  H_XFF,
  H_XFP,
  pushMeshHeaders,
  REQUEST_HEADER_ACTIONS,
  routeOverrides,
} from './headers.ts';
import type { ListenerRuntime } from './listener.ts';
import { handleRequest } from './pipeline.ts';
import type { FlatHeaders } from './upstream/types.ts';

export class Http1Context extends RequestContext {
  readonly protocol = 'HTTP/1.1';
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  private contentLength = 0;
  private chunked = false;
  private drainHooked = false;

  /** `res` is null for Upgrade requests (websocket.ts), which never use the sink or replyLocal. */
  constructor(listener: ListenerRuntime, req: IncomingMessage, res: ServerResponse | null) {
    super(listener);
    this.req = req;
    this.res = res as ServerResponse;
    const url = req.url ?? '/';
    this.url = url;
    const q = url.indexOf('?');
    this.path = q < 0 ? url : url.slice(0, q);
    this.method = req.method ?? 'GET';
    this.remoteAddress = req.socket.remoteAddress ?? '';
    if ((req.socket as { encrypted?: boolean }).encrypted === true) this.scheme = 'https';
    // Host and framing are needed for every request; read them off rawHeaders without building req.headers
    // (the length check skips the lowercase for most names).
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i];
      if (n.length === 4 && n.toLowerCase() === 'host') this.authority = raw[i + 1];
      else if (n.length === 14 && n.toLowerCase() === 'content-length') this.contentLength = Number(raw[i + 1]);
      else if (n.length === 17 && n.toLowerCase() === 'transfer-encoding') this.chunked = true;
    }
    res?.once('close', this.onDownstreamClose);
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  requestBody(): { body: Readable | null; contentLength: number } {
    if (!this.chunked && this.contentLength <= 0) return { body: null, contentLength: 0 };
    this.req.on('data', this.countRequestBytes);
    return { body: this.req, contentLength: this.chunked ? -1 : this.contentLength };
  }

  private readonly countRequestBytes = (chunk: Buffer): void => {
    this.requestBytes += chunk.length;
  };

  upstreamHeaders(): FlatHeaders {
    const raw = this.req.rawHeaders;
    const out: FlatHeaders = [];
    const g: GatheredHeaders = { xff: undefined, xfp: undefined, requestId: undefined, source: undefined };
    let connectionTokens: string[] | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
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
        case H_CONNECTION: {
          const v = raw[i + 1].toLowerCase();
          if (v !== 'keep-alive' && v !== 'close') connectionTokens = v.split(/\s*,\s*/);
          break;
        }
        // H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING: written by the pool from the context;
        // H_TARGET, H_DROP, H_TE: replaced or hop-by-hop.
      }
    }
    if (connectionTokens !== null) dropNamed(out, connectionTokens);
    pushMeshHeaders(this, out, g, this.scheme);
    return out;
  }

  replyLocal(status: number, flag: ResponseFlag, message: string, _grpcStatus: number): void {
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      const body = `${message}\n`;
      this.responseBytes = Buffer.byteLength(body);
      res.writeHead(status, [
        'content-type',
        'text/plain',
        'content-length',
        String(Buffer.byteLength(body)),
        FLAG_HEADER,
        flag,
        'x-request-id',
        this.requestId || this.ensureRequestId(this.header('x-request-id')),
      ]);
      res.end(body);
    } else res.destroy();
    this.finish(status, flag);
  }

  onResponse(status: number, headers: FlatHeaders, endStream: boolean): void {
    this.status = status;
    this.noteUpstreamHead(headers, endStream);
    this.res.writeHead(status, headers);
  }

  onData(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    if (this.res.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', () => this.exchange?.resume());
    }
    return false;
  }

  onEnd(trailers: FlatHeaders | null, last: Buffer | null): void {
    const res = this.res;
    if (trailers !== null && trailers.length > 0) {
      const t: Record<string, string> = {};
      for (let i = 0; i < trailers.length; i += 2) t[trailers[i]] = trailers[i + 1];
      res.addTrailers(t);
    }
    this.exchange = null;
    if (last !== null) {
      this.responseBytes += last.length;
      res.end(last);
    } else res.end();
    this.finish(this.status, '');
  }

  onError(err: UpstreamError): void {
    this.exchange = null;
    const flag = err.flag;
    this.listener.log.debug('upstream error', { requestId: this.requestId, flag, error: err.message });
    if (this.res.headersSent) {
      // Mid-response: the only honest signal left is to cut the connection.
      this.res.destroy();
      this.finish(this.status, flag);
      return;
    }
    const reply = this.listener.reply(flag);
    this.replyLocal(reply.status, flag, `${reply.message}: ${err.message}`, reply.grpcStatus);
  }

  private readonly onDownstreamClose = (): void => {
    if (this.finished) return;
    // The client went away before the response was complete.
    const ex = this.exchange;
    this.exchange = null;
    ex?.abort();
    this.finish(this.status || 499, FLAG.DownstreamDisconnect);
  };
}

function dropNamed(out: FlatHeaders, names: string[]): void {
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (names.includes(out[i].toLowerCase())) out.splice(i, 2);
  }
}

export function onHttp1Request(listener: ListenerRuntime, req: IncomingMessage, res: ServerResponse): void {
  const ctx = new Http1Context(listener, req, res);
  handleRequest(listener.stages, ctx);
}
