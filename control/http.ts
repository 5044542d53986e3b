// The control API's HTTP shell: a route table (method + path pattern → handler), JSON in and out, and one error
// shape for every failure. Handlers see a parsed request and return a value or throw an ApiError; they never
// touch the socket. Not a hot path (people and CI call it), so node:http and clarity over speed.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import type { z } from 'zod';
import { formatIssues } from '../src/config/load.ts';

/** Stable error codes, as undici's UND_ERR_*: clients branch on these, not on messages. */
export type ApiErrorCode =
  | 'SKEIN_BAD_REQUEST'
  | 'SKEIN_UNAUTHORIZED'
  | 'SKEIN_FORBIDDEN'
  | 'SKEIN_NOT_FOUND'
  | 'SKEIN_METHOD_NOT_ALLOWED'
  | 'SKEIN_CONFLICT'
  | 'SKEIN_PAYLOAD_TOO_LARGE'
  | 'SKEIN_UNSUPPORTED_MEDIA_TYPE'
  | 'SKEIN_UNAVAILABLE'
  | 'SKEIN_TOO_MANY'
  | 'SKEIN_INTERNAL';

const STATUS: Record<ApiErrorCode, number> = {
  SKEIN_BAD_REQUEST: 400,
  SKEIN_UNAUTHORIZED: 401,
  SKEIN_FORBIDDEN: 403,
  SKEIN_NOT_FOUND: 404,
  SKEIN_METHOD_NOT_ALLOWED: 405,
  SKEIN_CONFLICT: 409,
  SKEIN_PAYLOAD_TOO_LARGE: 413,
  SKEIN_UNSUPPORTED_MEDIA_TYPE: 415,
  SKEIN_UNAVAILABLE: 503,
  SKEIN_TOO_MANY: 429,
  SKEIN_INTERNAL: 500,
};

export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly status: number;
  /** One line per problem, e.g. `localTargets[1]: unknown target 'envoy'`. */
  readonly problems: readonly string[];
  constructor(code: ApiErrorCode, message: string, problems: readonly string[] = []) {
    super(message);
    this.code = code;
    this.status = STATUS[code];
    this.problems = problems;
  }
}

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  /** `:name` segments of the matched pattern. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The parsed JSON body; undefined when there was none. */
  readonly body: unknown;
  /** Who made a write (the authorize hook's answer); undefined on reads. */
  readonly actor: string | undefined;
  /** The If-Match header: a write made only over that version of the resource (its ETag). */
  readonly ifMatch: string | undefined;
}

/** What a handler returns: JSON (the default) or a body of another type (a report file). */
export type ApiReply =
  | { readonly status?: number; readonly json: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status?: number; readonly body: string | Buffer; readonly contentType: string }
  /** A long-lived answer the handler writes itself (the proxies' push stream). */
  | { readonly stream: (res: http.ServerResponse) => void };

export interface RouteDoc {
  readonly summary: string;
  readonly body?: z.ZodType;
  readonly query?: z.ZodType;
  /** 'stream': an answer that never ends (newline-delimited JSON); 'pem': certificates or CRLs as PEM text. */
  readonly response?: z.ZodType | 'stream' | 'text' | 'pem';
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/benchmarks/jobs/:id/result`: literal segments and `:name` captures. */
  readonly path: string;
  /** A POST that needs no API token (proxies' acknowledgements; they authenticate with mTLS later). */
  readonly open?: boolean;
  /**
   * An open write's own check, run before its body is read: returns who makes it or throws an ApiError (401).
   * The certificate route checks the bootstrap token with it.
   */
  readonly authorize?: (req: http.IncomingMessage) => string | Promise<string>;
  /** What /openapi.json says of it: the schemas are the ones the handler validates with. */
  readonly doc?: RouteDoc;
  handle(req: ApiRequest): ApiReply | Promise<ApiReply>;
}

/** Validates `value` against `schema`; a failure is a 400 naming each field path and its reason. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what = 'request body'): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError('SKEIN_BAD_REQUEST', `invalid ${what}`, formatIssues(result.error.issues));
  return result.data;
}

interface CompiledRoute {
  readonly route: Route;
  readonly segments: readonly string[];
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function match(segments: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (seg.startsWith(':')) params[seg.slice(1)] = parts[i];
    else if (seg !== parts[i]) return undefined;
  }
  return params;
}

export const MAX_BODY_BYTES = 1024 * 1024;

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new ApiError('SKEIN_PAYLOAD_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const type = (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json')
    throw new ApiError('SKEIN_UNSUPPORTED_MEDIA_TYPE', `request body must be application/json, got ${type}`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ApiError('SKEIN_BAD_REQUEST', 'request body is not valid JSON', [`(body): ${(err as Error).message}`]);
  }
}

function send(res: http.ServerResponse, reply: ApiReply): void {
  if ('stream' in reply) {
    reply.stream(res);
    return;
  }
  const status = reply.status ?? 200;
  if ('json' in reply) {
    const body = `${JSON.stringify(reply.json, null, 2)}\n`;
    res.writeHead(status, {
      ...reply.headers,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end(body);
  } else {
    res.writeHead(status, { 'content-type': reply.contentType, 'cache-control': 'no-store' });
    res.end(reply.body);
  }
}

export function errorReply(err: ApiError): ApiReply {
  return {
    status: err.status,
    json: {
      error: { code: err.code, message: err.message, ...(err.problems.length > 0 && { problems: err.problems }) },
    },
    ...(err.code === 'SKEIN_METHOD_NOT_ALLOWED' && { headers: { allow: err.problems.join(', ') } }),
  };
}

export interface ApiServerOptions {
  readonly routes: readonly Route[];
  /** Where unexpected handler failures go (they become a 500 for the caller). */
  readonly onError: (err: unknown, req: { method: string; path: string }) => void;
  /**
   * Once per answered (or abandoned) request, for metrics: `route` is the pattern of the route whose path matched
   * (also when the method did not), or undefined when none did — never the raw path, which a caller chooses.
   */
  readonly onResponse?: (route: string | undefined, method: string, status: number, seconds: number) => void;
  /**
   * Called before a write (POST, PUT, DELETE) that is not `open` runs: returns who makes it (for the audit log)
   * or throws an ApiError (401). Without it every write is allowed and anonymous.
   */
  readonly authorize?: (req: http.IncomingMessage) => string | Promise<string>;
  /** Serve HTTPS with these options (control's own certificate, client certificates requested); absent: HTTP. */
  readonly tls?: https.ServerOptions;
}

/** The HTTP (or HTTPS) server for a route table; listen() it yourself. */
export function createApiServer(opts: ApiServerOptions): http.Server | https.Server {
  const compiled: CompiledRoute[] = opts.routes.map((route) => ({ route, segments: split(route.path) }));
  /** `matched` hears each route whose path matches, `handled` true for the one that takes the request. */
  const dispatch = async (
    req: http.IncomingMessage,
    matched: (pattern: string, handled: boolean) => void,
  ): Promise<ApiReply> => {
    const url = new URL(req.url ?? '/', 'http://control');
    const parts = split(url.pathname);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const allowed: string[] = [];
    for (const { route, segments } of compiled) {
      const params = match(segments, parts);
      if (params === undefined) continue;
      if (route.method !== method) {
        matched(route.path, false);
        allowed.push(route.method);
        continue;
      }
      matched(route.path, true);
      const write = method !== 'GET';
      const check = route.open === true ? route.authorize : opts.authorize;
      const actor = write && check !== undefined ? await check(req) : undefined;
      const body = method === 'GET' || method === 'DELETE' ? undefined : await readBody(req);
      const ifMatch = typeof req.headers['if-match'] === 'string' ? req.headers['if-match'] : undefined;
      return route.handle({ method, path: url.pathname, params, query: url.searchParams, body, actor, ifMatch });
    }
    if (allowed.length > 0)
      throw new ApiError('SKEIN_METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}`, allowed);
    throw new ApiError('SKEIN_NOT_FOUND', `no such resource: ${url.pathname}`);
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const onResponse = opts.onResponse;
    let pattern: string | undefined;
    if (onResponse !== undefined) {
      const startedAt = process.hrtime.bigint();
      res.once('close', () =>
        onResponse(pattern, req.method ?? '', res.statusCode, Number(process.hrtime.bigint() - startedAt) / 1e9),
      );
    }
    dispatch(req, (p, handled) => (pattern = handled ? p : (pattern ?? p)))
      .then((reply) => send(res, reply))
      .catch((err: unknown) => {
        if (err instanceof ApiError) return send(res, errorReply(err));
        opts.onError(err, { method: req.method ?? '?', path: req.url ?? '?' });
        send(res, errorReply(new ApiError('SKEIN_INTERNAL', 'internal error; the control log has the details')));
      })
      .catch(() => res.destroy());
  };
  return opts.tls === undefined ? http.createServer(handler) : https.createServer(opts.tls, handler);
}

/** Listen on host:port (0 = any free port) and return the bound address. */
export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
