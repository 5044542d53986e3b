// The contract between the request path and the upstream pools: a protocol-neutral outbound request and a
// sink that receives the response. Each pool (HTTP/1.1, HTTP/2) speaks its wire format on one side of it,
// each downstream protocol handler implements a sink, so any downstream protocol can reach any upstream one.
import type { Readable } from 'node:stream';
import type { ClusterLimits } from '../../src/resilience/cluster-limits.ts';
import type { UpstreamError } from '../flags.ts';
import type { UpstreamMtls } from '../mtls/upstream.ts';

/** Header fields as a flat list: [name, value, name, value, ...]. Never pseudo-headers, never hop-by-hop. */
export type FlatHeaders = string[];

/** A body that can be had again from its first byte while `replayable` (body-replay.ts). */
export interface KeptBody {
  readonly replayable: boolean;
  next(): Readable;
}

export interface OutboundRequest {
  readonly method: string;
  /** Path and query, as sent upstream. */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  readonly headers: FlatHeaders;
  /** Request body; null when there is none. */
  readonly body: Readable | null;
  /** Body length when known, -1 when it is streamed with unknown length, 0 for none. */
  readonly contentLength: number;
  /** Deadline for the whole exchange in ms; 0 = none. */
  readonly timeoutMs: number;
  /** `protocol: auto` and not gRPC: if the endpoint refuses HTTP/2, the request may go over HTTP/1.1. */
  readonly http1Fallback: boolean;
  /** The request's kept body (the runner's BodyReplay), when it has one: a transparent re-send (the
   *  keep-alive close race) takes the body from its first byte there instead of the pool keeping a copy. */
  readonly keptBody: KeptBody | null;
  /** Upstream attempts for this request: 1, plus one each time a pool sends it again transparently (the
   *  keep-alive close race, an endpoint that refused HTTP/2). The access log shows it. */
  attempts: number;
}

/**
 * The downstream side of an exchange. The exception boundary: a pool calls onResponse, onData and onEnd each
 * inside a try; one that throws ends the exchange (connection closed, or stream cancelled) and the pool then
 * calls onError with a ForwardError (flag UPE, the exception as cause). onError itself must not throw.
 */
export interface ResponseSink {
  /** Response head. `endStream`: no body or trailers follow. */
  onResponse(status: number, headers: FlatHeaders, endStream: boolean): void;
  /** A body chunk; return false to ask the upstream to pause until Exchange.resume(). */
  onData(chunk: Buffer): boolean;
  /** End of response, with trailers when the upstream sent any, and the final body chunk when the pool held
   *  it back to end with it (a small response then costs one downstream write). */
  onEnd(trailers: FlatHeaders | null, last: Buffer | null): void;
  /** The exchange failed; `err.flag` says how. Called at most once, and never after onEnd. */
  onError(err: UpstreamError): void;
}

/** A request in flight to one upstream endpoint. */
export interface Exchange {
  /** The downstream went away: stop, release or destroy the connection. No sink call follows. */
  abort(): void;
  /** The sink drained after onData returned false. */
  resume(): void;
}

/** One endpoint's connections for one protocol. */
export interface EndpointPool {
  request(req: OutboundRequest, sink: ResponseSink): Exchange;
  /** Connections open (busy + idle), for /clusters. */
  readonly connectionCount: number;
  /** Close idle connections now and the rest when their request ends. */
  close(): void;
}

export interface PoolOptions {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxIdle: number;
  /** Told when a connection (HTTP/2: a session) to the endpoint is established (+1) and when it closes (-1). */
  readonly onConnection?: (delta: 1 | -1) => void;
  /** Told when a request is sent again after the keep-alive close race (h1-pool.ts). */
  readonly onKeepAliveRetry?: () => void;
  /** The cluster's thresholds: connections (HTTP/2: sessions) counted cluster-wide, and the bounded wait for
   *  one at maxConnections (maxPendingRequests). Absent: no limit (tests of a pool alone). */
  readonly limits?: ClusterLimits;
  /** mTLS with the mesh identity to this endpoint (mtls/upstream.ts); absent or null: plaintext. */
  readonly mtls?: UpstreamMtls | null;
}

/** The exchange of a request a pool failed at once (overflow): nothing to abort or resume. */
export const NO_EXCHANGE: Exchange = { abort() {}, resume() {} };
