// What telemetry sees of a request, and the hooks the proxy calls. The proxy's RequestContext implements
// RequestRecord; metrics, tracing and the access log read it once the request has finished (tracing also at
// start and when the upstream request is built). Telemetry never changes what the proxy answers.

/** A request as telemetry sees it. Times are performance.now() milliseconds; 0 = did not happen. */
export interface RequestRecord {
  /** Listener name from the config. */
  readonly listenerName: string;
  readonly direction: 'inbound' | 'outbound';
  /** TCP: a passthrough connection (counted by the TCP metrics, never as an HTTP request). */
  readonly protocol: 'HTTP/1.1' | 'HTTP/2' | 'TCP';
  readonly method: string;
  readonly authority: string;
  /** Path without the query string (the access log may print it; never a metric label). */
  readonly path: string;
  readonly scheme: string;
  readonly isGrpc: boolean;
  readonly remoteAddress: string;
  readonly userAgent: string;
  readonly requestId: string;
  /** The downstream request arrived (head parsed). */
  readonly startMs: number;
  /** The response ended (or the request was abandoned). */
  readonly endMs: number;
  /** The upstream request was sent / its response head arrived. */
  readonly upstreamStartMs: number;
  readonly upstreamHeadersMs: number;
  /** HTTP status sent downstream; 0 when none was (downstream disconnect before a response). */
  readonly status: number;
  /** gRPC status from the trailers (or trailers-only response); -1 when not gRPC or never received. */
  readonly grpcStatus: number;
  /** Envoy-style response flag ("UH", "UF", "NR", "DC"…); '' for none. */
  readonly flag: string;
  /** Body bytes received from the client / sent to it. */
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** The endpoint picked, "host:port"; '' when none was. */
  readonly upstreamHost: string;
  readonly clusterName: string;
  readonly routeName: string;
  /** Upstream attempts: more than 1 when a pool sent the request again (the keep-alive close race, an
   *  endpoint that refused HTTP/2); absent or 0 when none was made. */
  readonly upstreamAttempts?: number;
  /** Who called (x-source-service, or this proxy's service on outbound) and who was called. */
  readonly sourceService: string;
  readonly destinationService: string;
  /** The picked endpoint's `version` label; '' when unknown. */
  readonly destinationVersion: string;
  /** From the tracer's TraceState when the request is traced (32 and 16 hex digits); '' otherwise. */
  readonly traceId: string;
  readonly spanId: string;
}

/** Reads one request header (lowercase name, comma-joined when repeated). */
export type HeaderReader = (lowercaseName: string) => string | undefined;

/** Flat [name, value, name, value, …] header list (what the upstream pools send). */
export type FlatHeaders = string[];

/** What a tracer keeps per traced request; implementations add their spans. */
export interface TraceState {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** The proxy's server span id, 16 lowercase hex digits. */
  readonly spanId: string;
}

/**
 * Per-request tracing. The proxy calls start() when the request head is parsed, inject() when it builds the
 * upstream request (possibly never: a local reply), and end() exactly once when the request finishes.
 */
export interface RequestTracer<State extends TraceState = TraceState> {
  /** Lowercase names of every propagation header this tracer replaces: the header copy skips them on a traced
   *  request, and inject() writes the configured formats (so none is left stale beside the new context). */
  readonly headerNames: ReadonlySet<string>;
  /** null: this request is not traced and its incoming trace headers are copied through unchanged. */
  start(rec: RequestRecord, header: HeaderReader): State | null;
  /** Starts the client span and writes the outgoing propagation headers into `out`. */
  inject(state: State, rec: RequestRecord, out: FlatHeaders): void;
  /** A failed attempt the retry stage will retry: ends its client span with its outcome; the next inject()
   *  starts the next attempt's. */
  retry?(state: State, failed: { readonly status: number; readonly flag: string }): void;
  /** Ends the spans with what the record says (status, flag, bytes, upstream host). */
  end(state: State, rec: RequestRecord): void;
  /** Exports what is queued (bounded wait) and stops. */
  shutdown(): Promise<void>;
}
