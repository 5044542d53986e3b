// What the generator needs from one client connection of any protocol: room for another request, send one,
// time out old ones, close. A connection reports every outcome to its sink exactly once; it never calls the
// sink synchronously from send(), so the generator's loops are never re-entered.
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, createSecureContext, type SecureContext } from 'node:tls';
import type { LoadTls } from '../types.ts';

/** "connect", "tls", "reset", "timeout", "status_4xx", "status_5xx", "grpc_<name>", "protocol". */
export type ErrorKind = string;

export interface RequestSink {
  /**
   * One request finished. `startedAt` is what send() was given (the intended time in open loop), `error` is
   * undefined for a success; `responded` says whether an answer arrived (its latency is meaningful).
   */
  done(conn: LoadConnection, startedAt: number, error: ErrorKind | undefined, responded: boolean): void;
  /** gRPC server streaming: response messages received. */
  messages(count: number): void;
}

export interface LoadConnection {
  readonly index: number;
  /** Requests in flight on this connection. */
  readonly inFlight: number;
  /** Can another request start now (it may reconnect first)? */
  hasRoom(): boolean;
  /** Starts one request; `startedAt` (performance.now() ms) comes back in the sink's done(). */
  send(startedAt: number): void;
  /** Fails, as "timeout", every request in flight that started before `startedBefore`. */
  expire(startedBefore: number): void;
  /** Resolves once connected or failed (never rejects); used to open connections before the clock starts. */
  ready(): Promise<void>;
  close(): void;
}

export interface ClientOptions {
  readonly url: URL;
  readonly payloadBytes: number;
  readonly tls?: LoadTls;
  /** HTTP/1.1: a new connection per request (`connection: close`). */
  readonly newConnectionPerRequest?: boolean;
  /** h2/gRPC: most streams in flight per connection. */
  readonly streamsPerConnection: number;
  readonly streamMessages: number;
}

export type ConnectionFactory = (index: number, sink: RequestSink, opts: ClientOptions) => LoadConnection;

// One secure context per CA and client certificate for the generator's life: files read and parsed once, not per
// connection (a new connection per request would otherwise re-read and re-parse them every time).
const secureContexts = new Map<string, SecureContext>();

function secureContextFor(tls: LoadTls): SecureContext {
  const key = `${tls.caFile ?? ''}\0${tls.certFile ?? ''}\0${tls.keyFile ?? ''}`;
  let ctx = secureContexts.get(key);
  if (ctx === undefined) {
    ctx = createSecureContext({
      ca: tls.caFile === undefined ? undefined : readFileSync(tls.caFile),
      cert: tls.certFile === undefined ? undefined : readFileSync(tls.certFile),
      key: tls.keyFile === undefined ? undefined : readFileSync(tls.keyFile),
    });
    secureContexts.set(key, ctx);
  }
  return ctx;
}

/**
 * TLS client options from the spec: the CA when given (else the server certificate is not verified, as wrk and
 * h2load do not), and a client certificate for mTLS. No session is resumed: every connection is a full handshake.
 */
export function tlsOptions(url: URL, tls: LoadTls | undefined, alpn: string[]): ConnectionOptions {
  const opts: ConnectionOptions = {
    host: url.hostname,
    port: Number(url.port || 443),
    ALPNProtocols: alpn,
    rejectUnauthorized: tls?.caFile !== undefined,
  };
  if (tls !== undefined && (tls.caFile ?? tls.certFile) !== undefined) opts.secureContext = secureContextFor(tls);
  const servername = tls?.servername ?? (isIpAddress(url.hostname) ? undefined : url.hostname);
  if (servername !== undefined) opts.servername = servername;
  return opts;
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':') || host.startsWith('[');
}

/** The status error kind, or undefined for a success (1xx–3xx). */
export function statusError(status: number): ErrorKind | undefined {
  if (status >= 500) return 'status_5xx';
  if (status >= 400) return 'status_4xx';
  return undefined;
}

/**
 * Error kind for a socket or session failure: "tls" when the handshake or the peer's certificate failed (either
 * side; in TLS 1.3 a refused client certificate arrives after the client thinks it is connected), "connect" when
 * no connection was made, else "reset".
 */
export function transportError(err: NodeJS.ErrnoException | undefined, connected: boolean): ErrorKind {
  const code = err?.code ?? '';
  if (/SSL|TLS|CERT|SIGNATURE|HANDSHAKE/.test(code)) return 'tls';
  if (!connected) return 'connect';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'reset';
}

/** A payload of `bytes` bytes (a fixed pattern; content does not matter to any target). */
export function payload(bytes: number): Buffer {
  return Buffer.alloc(bytes, 'x');
}
