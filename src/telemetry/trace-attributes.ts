// What a sampled request's spans say: names, attributes and status after OpenTelemetry's HTTP and RPC semantic
// conventions, plus skein.* for what only the mesh knows (response flag, cluster, endpoint, services). Pure
// functions of the RequestRecord; tracing.ts calls them only for sampled requests.
import { type Attributes, type Span, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { RequestRecord } from './types.ts';

// RPC names that semantic conventions 1.45 deprecated in favour of rpc.system.name / rpc.status_code and a
// fully-qualified rpc.method; still written because dashboards and Jaeger's UI know them.
const ATTR_RPC_SYSTEM = 'rpc.system';
const ATTR_RPC_SERVICE = 'rpc.service';
const ATTR_RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';

export const ATTR_SKEIN_RESPONSE_FLAG = 'skein.response_flag';
export const ATTR_SKEIN_UPSTREAM_CLUSTER = 'skein.upstream_cluster';
export const ATTR_SKEIN_UPSTREAM_HOST = 'skein.upstream_host';
export const ATTR_SKEIN_REQUEST_ID = 'skein.request_id';
export const ATTR_SKEIN_SOURCE_SERVICE = 'skein.source_service';
export const ATTR_SKEIN_DESTINATION_SERVICE = 'skein.destination_service';
export const ATTR_SKEIN_DESTINATION_VERSION = 'skein.destination_version';
export const ATTR_SKEIN_ROUTE = 'skein.route';
export const ATTR_SKEIN_LISTENER = 'skein.listener';
export const ATTR_SKEIN_DIRECTION = 'skein.direction';

const KNOWN_METHODS = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
  'QUERY',
]);

const GRPC_CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** gRPC codes that are the server's fault (RPC conventions); a client span treats any non-OK code as an error. */
const GRPC_SERVER_ERRORS = new Set([2, 4, 12, 13, 14, 15]);

/** "pkg.Service/Method" from the gRPC path "/pkg.Service/Method"; '' when the path is not of that shape. */
function grpcFullMethod(path: string): string {
  const slash = path.indexOf('/', 1);
  return path.charCodeAt(0) === 47 && slash > 1 && slash < path.length - 1 ? path.slice(1) : '';
}

/** Span name: "{rpc.method}" for gRPC, the HTTP method otherwise (no route template is known). */
export function spanName(rec: RequestRecord): string {
  if (rec.isGrpc) {
    const full = grpcFullMethod(rec.path);
    if (full !== '') return full;
  }
  return KNOWN_METHODS.has(rec.method) ? rec.method : 'HTTP';
}

/** host and port of an authority ("h:1", "[::1]:2", "h"); the port falls back to the scheme's default. */
function splitAuthority(authority: string, scheme: string): [string, number] {
  const colon = authority.lastIndexOf(':');
  const close = authority.lastIndexOf(']');
  if (colon > close && colon > 0) {
    const port = Number(authority.slice(colon + 1));
    const host = authority.slice(authority.charCodeAt(0) === 91 ? 1 : 0, close > 0 ? close : colon);
    if (Number.isInteger(port)) return [host, port];
  }
  const host = close > 0 ? authority.slice(1, close) : authority;
  return [host, scheme === 'https' ? 443 : 80];
}

/** What is known when the request head arrives: the span's start attributes. */
export function requestAttributes(rec: RequestRecord, kind: 'server' | 'client'): Attributes {
  const [host, port] = splitAuthority(rec.authority, rec.scheme);
  const attrs: Attributes = { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: port };
  if (rec.isGrpc) {
    const full = grpcFullMethod(rec.path);
    const slash = full.indexOf('/');
    attrs[ATTR_RPC_SYSTEM_NAME] = 'grpc';
    attrs[ATTR_RPC_SYSTEM] = 'grpc';
    attrs[ATTR_RPC_METHOD] = full === '' ? '_OTHER' : full;
    if (slash > 0) attrs[ATTR_RPC_SERVICE] = full.slice(0, slash);
  } else {
    if (KNOWN_METHODS.has(rec.method)) attrs[ATTR_HTTP_REQUEST_METHOD] = rec.method;
    else {
      attrs[ATTR_HTTP_REQUEST_METHOD] = '_OTHER';
      attrs[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = rec.method;
    }
  }
  if (kind === 'server') {
    attrs[ATTR_URL_PATH] = rec.path;
    attrs[ATTR_URL_SCHEME] = rec.scheme;
    attrs[ATTR_NETWORK_PROTOCOL_VERSION] = rec.protocol === 'HTTP/2' ? '2' : '1.1';
    if (rec.remoteAddress !== '') attrs[ATTR_CLIENT_ADDRESS] = rec.remoteAddress;
    if (rec.userAgent !== '') attrs[ATTR_USER_AGENT_ORIGINAL] = rec.userAgent;
    attrs[ATTR_SKEIN_LISTENER] = rec.listenerName;
    attrs[ATTR_SKEIN_DIRECTION] = rec.direction;
  } else {
    attrs[ATTR_URL_FULL] = `${rec.scheme}://${rec.authority}${rec.path}`;
  }
  return attrs;
}

/** The outcome, known once the request has finished: attributes and status on a span. */
export function recordOutcome(span: Span, rec: RequestRecord, kind: 'server' | 'client'): void {
  const { status, flag, grpcStatus } = rec;
  if (status > 0) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  if (rec.isGrpc && grpcStatus >= 0) {
    span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, grpcStatus);
    span.setAttribute(ATTR_RPC_STATUS_CODE, GRPC_CODE_NAMES[grpcStatus] ?? String(grpcStatus));
  }
  if (flag !== '') span.setAttribute(ATTR_SKEIN_RESPONSE_FLAG, flag);
  if (rec.clusterName !== '') span.setAttribute(ATTR_SKEIN_UPSTREAM_CLUSTER, rec.clusterName);
  if (rec.upstreamHost !== '') {
    span.setAttribute(ATTR_SKEIN_UPSTREAM_HOST, rec.upstreamHost);
    if (kind === 'client') {
      const [host, port] = splitAuthority(rec.upstreamHost, 'http');
      span.setAttribute(ATTR_NETWORK_PEER_ADDRESS, host);
      span.setAttribute(ATTR_NETWORK_PEER_PORT, port);
    }
  }
  if (kind === 'server') {
    if (rec.requestId !== '') span.setAttribute(ATTR_SKEIN_REQUEST_ID, rec.requestId);
    if (rec.routeName !== '') span.setAttribute(ATTR_SKEIN_ROUTE, rec.routeName);
    if (rec.sourceService !== '') span.setAttribute(ATTR_SKEIN_SOURCE_SERVICE, rec.sourceService);
    if (rec.destinationService !== '') span.setAttribute(ATTR_SKEIN_DESTINATION_SERVICE, rec.destinationService);
    if (rec.destinationVersion !== '') span.setAttribute(ATTR_SKEIN_DESTINATION_VERSION, rec.destinationVersion);
  }
  const errorType = errorTypeOf(rec, kind);
  if (errorType !== '') {
    span.setAttribute(ATTR_ERROR_TYPE, errorType);
    span.setStatus(flag !== '' ? { code: SpanStatusCode.ERROR, message: flag } : { code: SpanStatusCode.ERROR });
  }
}

/**
 * '' when the request succeeded from this span's point of view. A response flag (the proxy answered or the
 * exchange broke) wins; then the gRPC status; then HTTP: 5xx for a server span, 4xx and 5xx for a client span.
 */
export function errorTypeOf(rec: RequestRecord, kind: 'server' | 'client'): string {
  // DI (a delay injected on purpose) marks the request but is no error: its outcome decides.
  if (rec.flag !== '' && rec.flag !== 'DI') return rec.flag;
  if (rec.isGrpc && rec.grpcStatus > 0) {
    if (kind === 'client' || GRPC_SERVER_ERRORS.has(rec.grpcStatus)) {
      return GRPC_CODE_NAMES[rec.grpcStatus] ?? String(rec.grpcStatus);
    }
    return '';
  }
  if (rec.status >= 500 || (kind === 'client' && rec.status >= 400)) return String(rec.status);
  return '';
}
